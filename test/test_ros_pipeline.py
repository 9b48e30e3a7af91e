"""Closed loop over DDS: Meta-World bridge -> planner -> action predictor -> bridge."""

from __future__ import annotations

from dts_msgs.msg import ActionChunk, EpisodeStatus, PlanDiagnostics, VideoPlan
from ros_helpers import overrides, start_planner
from rclpy.qos import QoSProfile
from sensor_msgs.msg import Image

from dts_planner.ros.action_predictor_node import ActionPredictorNode
from dts_planner.ros.metaworld_bridge_node import MetaWorldBridgeNode
from dts_planner.ros.spin import autostart


def stamp_ns(msg) -> int:
    """Header stamp of `msg` in ns."""
    return msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec


def test_bridge_planner_predictor_loop_carries_stamps(ros) -> None:
    ns = "/loop"
    planner = start_planner(ros, ns, replan_policy="on_demand")
    predictor = ros.add_node(ActionPredictorNode(
        context=ros.context, namespace=ns,
        parameter_overrides=overrides({"device": "cpu", "autostart": False})))
    assert autostart(predictor)
    probe = ros.node("probe", namespace=ns)
    got: dict[str, list] = {"image": [], "plan": [], "report": [], "actions": [], "status": []}
    depth = QoSProfile(depth=100)
    for topic, kind, key in (("image", Image, "image"), ("plan", VideoPlan, "plan"),
                             ("plan_diagnostics", PlanDiagnostics, "report"),
                             ("actions", ActionChunk, "actions"),
                             ("episode_status", EpisodeStatus, "status")):
        probe.create_subscription(kind, topic, got[key].append, depth)
    bridge = ros.add_node(MetaWorldBridgeNode(
        context=ros.context, namespace=ns, parameter_overrides=overrides(
            {"sim.max_steps": 12, "sim.rate_hz": 200.0, "sim.resolution": 32})))
    assert ros.wait_for(lambda: len(bridge.results) >= 1, 90.0), got["status"][-1:]

    images = {(m.header.stamp.sec, m.header.stamp.nanosec) for m in got["image"]}
    plan = got["plan"][0]
    assert (plan.header.stamp.sec, plan.header.stamp.nanosec) in images
    assert plan.instruction == "door close" and plan.task_id == "door-close-v3"
    assert got["report"][0].header == plan.header
    first = next(chunk for chunk in got["actions"] if chunk.plan_id == plan.plan_id)
    # stamped with the observation it was computed from: the plan's source image, or a newer
    # frame if the predictor's subscriptions were still being discovered when that one came
    assert stamp_ns(first) >= stamp_ns(plan)
    assert first.action_space == ActionChunk.END_EFFECTOR_DELTA_XYZ_GRIPPER
    assert list(first.dimension_names) == ["dx", "dy", "dz", "gripper"]
    assert first.horizon == 1 and len(first.data) == 4 and first.dt > 0
    assert all((c.header.stamp.sec, c.header.stamp.nanosec) in images for c in got["actions"])
    result = bridge.results[0]
    assert result.steps == 12 or result.success
    assert any(s.reset_reason == EpisodeStatus.RESET_STARTUP for s in got["status"])
    assert predictor.health.counts()["chunks_published"] >= 12
    assert planner.health.counts()["plans_published"] >= 1
    # the goal servo reads colour only: no depth pass until someone subscribes to depth
    assert bridge._obs.depth is None
    depths: list[Image] = []
    probe.create_subscription(Image, "depth", depths.append, depth)
    assert ros.wait_for(lambda: depths, 10.0)
    assert depths[0].encoding == "32FC1" and depths[0].height == 32
