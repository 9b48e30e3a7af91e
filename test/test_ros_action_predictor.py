"""Action-predictor node over DDS: the closed-loop policy, plan requests, episodes, bad input."""

from __future__ import annotations

from dts_msgs.msg import ActionChunk, EpisodeStatus, Instruction, PlanDiagnostics, VideoPlan
from dts_msgs.srv import RequestPlan
from geometry_msgs.msg import TwistStamped
import numpy as np
from rclpy.parameter import Parameter
from rclpy.time import Time
from ros_helpers import overrides, stamp
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header
import torch
from test_predictors_flow_policy import _turned_view, NAV_K, SIZE

from dts_planner.ros.action_predictor_node import ActionPredictorNode
from dts_planner.ros.image_conversion import depth_to_image, rgb_to_image
from dts_planner.ros.metaworld_bridge_node import camera_info
from dts_planner.ros.qos import latched_qos, make_qos
from dts_planner.ros.spin import autostart

RELIABLE = make_qos("reliable", 10)


class FakePlanner:
    """The planner's side of the graph: answers request_plan, publishes plans on demand."""

    def __init__(self, ros, namespace: str) -> None:
        self.ros = ros
        self.node = ros.node("fake_planner", namespace=namespace)
        self.requests: list[RequestPlan.Request] = []
        self.node.create_service(RequestPlan, "request_plan", self._on_request)
        self.plans = self.node.create_publisher(VideoPlan, "plan", RELIABLE)
        self.reports = self.node.create_publisher(PlanDiagnostics, "plan_diagnostics", RELIABLE)

    def _on_request(self, request, response):
        self.requests.append(request)
        response.accepted = True
        return response

    def publish(self, header: Header, plan_id: str, angles=(15.0, 30.0)) -> None:
        self.plans.publish(VideoPlan(header=header, plan_id=plan_id, frames=[
            rgb_to_image(_turned_view(angle), header) for angle in angles]))


def header_at(sec: int, nanosec: int = 0) -> Header:
    return Header(stamp=stamp(sec, nanosec), frame_id="camera")


def send_calibration(ros, predictor: ActionPredictorNode, publisher, header: Header) -> None:
    """Send camera_info until the predictor has it (10 Hz, as a camera driver).

    A frame that comes before any camera_info is dropped (counted); one camera_info sent before
    the best-effort subscription matched the publisher is lost.
    """
    for _ in range(100):
        publisher.publish(camera_info(NAV_K, SIZE, SIZE, header))
        if ros.wait_for(lambda: "intrinsics" in predictor._latest, 0.1):
            return
    raise AssertionError("the predictor never got camera_info")


def test_navigation_requests_a_plan_then_acts_and_drives(ros) -> None:
    """No plan: ask for one (stamp of the observation); the plan -> chunk and cmd_vel."""
    predictor = ros.add_node(ActionPredictorNode(
        context=ros.context, namespace="/nav", parameter_overrides=overrides({
            "device": "cpu", "autostart": False, "predictor.type": "optical_flow",
            "predictor.mode": "navigation",
            "predictor.frame_id": "base_link", "predictor.linear_speed": 0.3,
            "predictor.angular_speed": 0.7, "predictor.command_duration_s": 0.25})))
    assert autostart(predictor)
    planner = FakePlanner(ros, "/nav")
    probe = ros.node("probe", namespace="/nav")
    chunks: list[ActionChunk] = []
    twists: list[TwistStamped] = []
    probe.create_subscription(ActionChunk, "actions", chunks.append, RELIABLE)
    probe.create_subscription(TwistStamped, "cmd_vel", twists.append, RELIABLE)
    pubs = {name: probe.create_publisher(kind, name, RELIABLE) for name, kind in (
        ("image", Image), ("depth", Image), ("camera_info", CameraInfo))}
    assert ros.wait_for(lambda: all(p.get_subscription_count() for p in pubs.values())
                        and planner.plans.get_subscription_count(), 10.0)

    colour = header_at(100, 5_000_000)
    depth = header_at(100, 17_000_000)          # a separate RGB-D stamp, 12 ms later
    bad_depth = depth_to_image(np.ones((SIZE, SIZE)), depth)
    bad_depth.encoding = "64FC1"
    send_calibration(ros, predictor, pubs["camera_info"], colour)
    pubs["image"].publish(rgb_to_image(_turned_view(0.0), colour))
    pubs["depth"].publish(bad_depth)
    assert ros.wait_for(lambda: predictor.health.counts().get(
        "depth_invalid_unsupported_encoding"), 10.0)
    pubs["depth"].publish(depth_to_image(np.full((SIZE, SIZE), 2.0), depth))
    pubs["image"].publish(rgb_to_image(_turned_view(0.0), colour))
    assert ros.wait_for(lambda: planner.requests, 10.0)
    request = planner.requests[0]
    assert (request.min_stamp.sec, request.min_stamp.nanosec) == (100, 5_000_000)
    assert request.seed == -1                            # no episode seed without a simulator
    assert not chunks                                    # nothing moves before the plan
    # the plan failed in the planner (its report), then one got lost: asked for again each time
    assert ros.wait_for(lambda: planner.reports.get_subscription_count())
    planner.reports.publish(PlanDiagnostics(header=colour, status=PlanDiagnostics.MODEL_ERROR))
    assert ros.wait_for(lambda: len(planner.requests) == 2, 10.0)
    assert predictor.health.counts()["plans_failed_upstream"] == 1
    assert predictor.set_parameters([Parameter("predictor.plan_timeout_s", value=0.5)])[0] \
        .successful
    assert ros.wait_for(lambda: len(planner.requests) >= 3, 10.0)
    assert predictor.set_parameters([Parameter("predictor.plan_timeout_s", value=0.0)])[0] \
        .successful                                      # 0: wait for the plan forever
    assert ros.wait_for(lambda: predictor.health.counts()["plan_requests"] == len(
        planner.requests))                               # a request sent meanwhile arrived
    asked = len(planner.requests)
    assert predictor.health.counts()["plan_requests_timed_out"] == asked - 2
    assert all(r.min_stamp == request.min_stamp for r in planner.requests)
    broken = VideoPlan(header=colour, plan_id="broken",
                       frames=[rgb_to_image(_turned_view(15.0), colour)])
    broken.frames[0].data = bytes(broken.frames[0].data)[:7]
    planner.plans.publish(broken)
    assert ros.wait_for(lambda: predictor.health.counts().get("plans_invalid") == 1)
    planner.publish(colour, "turn-left")
    assert ros.wait_for(lambda: chunks and len(twists) >= 3, 20.0)
    chunk = chunks[0]
    assert chunk.header.stamp == colour.stamp and chunk.header.frame_id == "base_link"
    assert chunk.plan_id == "turn-left" and chunk.dimension_names == ["action"]
    assert chunk.action_space == ActionChunk.DISCRETE_NAVIGATION
    assert list(chunk.data) == [ActionChunk.NAV_TURN_LEFT] * 2 and chunk.horizon == 2
    assert [t.twist.angular.z for t in twists[:3]] == [0.7, 0.7, 0.0]   # then stop
    assert chunk.dt == 0.25                                  # each command runs 0.25 s
    sent = [Time.from_msg(t.header.stamp).nanoseconds / 1e9 for t in twists[:3]]
    # 0.25 s apart, give or take the 50 ms timer that publishes what is due
    assert all(0.2 <= later - earlier < 1.0 for earlier, later in zip(sent, sent[1:])), sent
    assert all(t.twist.linear.x == 0.0 for t in twists[:3])
    assert len(planner.requests) == asked and len(chunks) == 1   # one chunk per observation


def test_simulator_episodes_seed_the_plans_and_fence_off_the_old_episode(ros) -> None:
    """An observation is used once its step's status came; old-episode plans are ignored."""
    predictor = ros.add_node(ActionPredictorNode(
        context=ros.context, namespace="/episode", parameter_overrides=overrides({
            "device": "cpu", "autostart": False, "predictor.type": "optical_flow",
            "predictor.mode": "navigation",
            "predictor.episode_source": "simulator"})))
    assert autostart(predictor)
    planner = FakePlanner(ros, "/episode")
    probe = ros.node("probe", namespace="/episode")
    chunks: list[ActionChunk] = []
    probe.create_subscription(ActionChunk, "actions", chunks.append, RELIABLE)
    status = probe.create_publisher(EpisodeStatus, "episode_status", 10)
    pubs = {name: probe.create_publisher(kind, name, RELIABLE) for name, kind in (
        ("image", Image), ("depth", Image), ("camera_info", CameraInfo))}
    instruction = probe.create_publisher(Instruction, "instruction", latched_qos())
    assert ros.wait_for(lambda: all(p.get_subscription_count() for p in pubs.values())
                        and status.get_subscription_count()
                        and instruction.get_subscription_count()
                        and planner.plans.get_subscription_count(), 10.0)
    instruction.publish(Instruction(text="go to the chair"))   # episodes come from the sim
    send_calibration(ros, predictor, pubs["camera_info"], header_at(199))

    def observe(header: Header) -> None:
        pubs["camera_info"].publish(camera_info(NAV_K, SIZE, SIZE, header))
        pubs["depth"].publish(depth_to_image(np.full((SIZE, SIZE), 2.0), header))
        pubs["image"].publish(rgb_to_image(_turned_view(0.0), header))

    start = header_at(200)
    observe(start)                                   # its status (a reset) is not here yet
    assert ros.wait_for(lambda: predictor.health.counts().get("observations_received"), 10.0)
    assert "observations_without_intrinsics" not in predictor.health.counts()
    ros.wait_for(lambda: False, 0.3)
    assert not planner.requests
    # the reset itself was missed (sent before discovery): its step status names the episode
    status.publish(EpisodeStatus(header=start, episode=1, seed=42, step=0,
                                 episode_start=start.stamp))
    assert ros.wait_for(lambda: planner.requests, 10.0)
    assert planner.requests[0].seed == 42_000 and planner.requests[0].min_stamp == start.stamp
    planner.publish(header_at(199, 900_000_000), "from-episode-0")
    assert ros.wait_for(lambda: predictor.health.counts().get("plans_ignored") == 1)
    assert not chunks
    planner.publish(start, "episode-1")
    assert ros.wait_for(lambda: chunks, 10.0)
    assert chunks[0].plan_id == "episode-1" and len(planner.requests) == 1
    # the paused simulator re-publishes the same state (its chunk was lost): the same chunk
    # goes out again with the newer stamp, without a new prediction
    again = header_at(201)
    status.publish(EpisodeStatus(header=again, episode=1, seed=42, step=0,
                                 episode_start=start.stamp))
    observe(again)
    assert ros.wait_for(lambda: len(chunks) == 2, 10.0)
    assert chunks[1].header.stamp == again.stamp and list(chunks[1].data) == list(
        chunks[0].data)
    counts = predictor.health.counts()
    assert counts["chunks_resent"] == 1 and counts["chunks_published"] == 1
    assert counts["episode_resets"] == 1


def test_configure_builds_the_chosen_predictor_or_fails_clearly(ros) -> None:
    def configure(namespace: str, **params) -> ActionPredictorNode:
        node = ros.add_node(ActionPredictorNode(
            context=ros.context, namespace=namespace,
            parameter_overrides=overrides({"device": "cpu", "autostart": False, **params})))
        node.trigger_configure()
        return node

    policy = configure("/dp", **{"predictor.type": "diffusion_policy"})
    assert type(policy._policy.predictor).__name__ == "DiffusionPolicyPredictor"
    servo = configure("/gs", **{"predictor.type": "goal_servo"})   # the default, shipped head
    assert type(servo._policy.predictor).__name__ == "GoalServoPredictor"
    missing = configure("/dp_missing", **{"predictor.type": "diffusion_policy",
                                          "predictor.checkpoint_path": "/no/policy.pt"})
    assert missing._policy is None and "/no/policy.pt" in missing._error
    navigation = configure("/dp_nav", **{"predictor.type": "diffusion_policy",
                                         "predictor.mode": "navigation"})
    assert navigation._policy is None and "manipulation" in navigation._error
    # the device matters to the predictors with torch weights only
    missing_gpu = f"cuda:{torch.cuda.device_count()}"
    absent = configure("/gs_cuda", **{"predictor.type": "goal_servo", "device": missing_gpu})
    assert absent._policy is None and missing_gpu in absent._error
    flow = configure("/flow_cuda", **{"predictor.type": "optical_flow", "device": missing_gpu})
    assert type(flow._policy.predictor).__name__ == "FlowManipulationPolicy"
