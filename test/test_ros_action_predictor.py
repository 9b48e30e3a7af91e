"""Action-predictor node over DDS: navigation chunks and cmd_vel from a plan; bad input counted."""

from __future__ import annotations

from dts_msgs.msg import ActionChunk, EpisodeStatus, VideoPlan
from geometry_msgs.msg import TwistStamped
import numpy as np
from ros_helpers import overrides, stamp
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header
from std_srvs.srv import Trigger
from test_predictors_flow_policy import _turned_view, NAV_K, SIZE

from dts_planner.ros.action_predictor_node import ActionPredictorNode
from dts_planner.ros.image_conversion import depth_to_image, rgb_to_image
from dts_planner.ros.metaworld_bridge_node import camera_info
from dts_planner.ros.qos import make_qos
from dts_planner.ros.spin import autostart

RELIABLE = make_qos("reliable", 10)


def test_navigation_plan_gives_stamped_chunk_and_cmd_vel(ros) -> None:
    predictor = ros.add_node(ActionPredictorNode(
        context=ros.context, namespace="/nav", parameter_overrides=overrides({
            "device": "cpu", "autostart": False, "predictor.mode": "navigation",
            "predictor.frame_id": "base_link", "predictor.linear_speed": 0.3,
            "predictor.angular_speed": 0.7})))
    assert autostart(predictor)
    probe = ros.node("probe", namespace="/nav")
    chunks: list[ActionChunk] = []
    twists: list[TwistStamped] = []
    probe.create_subscription(ActionChunk, "actions", chunks.append, RELIABLE)
    probe.create_subscription(TwistStamped, "cmd_vel", twists.append, RELIABLE)
    pubs = {name: probe.create_publisher(kind, name, RELIABLE) for name, kind in (
        ("image", Image), ("depth", Image), ("camera_info", CameraInfo), ("plan", VideoPlan))}
    assert ros.wait_for(lambda: all(p.get_subscription_count() for p in pubs.values()), 10.0)

    header = Header(stamp=stamp(100, 5), frame_id="camera")
    bad_depth = depth_to_image(np.ones((SIZE, SIZE)), header)
    bad_depth.encoding = "64FC1"
    pubs["depth"].publish(bad_depth)
    broken = VideoPlan(header=header, plan_id="broken",
                       frames=[rgb_to_image(_turned_view(15.0), header)])
    broken.frames[0].data = bytes(broken.frames[0].data)[:7]
    pubs["plan"].publish(broken)
    assert ros.wait_for(lambda: predictor.health.counts().get("plans_invalid") == 1
                        and predictor.health.counts().get("depth_invalid_unsupported_encoding"))

    pubs["camera_info"].publish(camera_info(NAV_K, SIZE, SIZE, header))
    ros.wait_for(lambda: False, 0.5)            # CameraInfo is "latest", not matched by stamp
    pubs["depth"].publish(depth_to_image(np.full((SIZE, SIZE), 2.0), header))
    pubs["image"].publish(rgb_to_image(_turned_view(0.0), header))
    plan = VideoPlan(header=header, plan_id="turn-left", frames=[
        rgb_to_image(_turned_view(angle), header) for angle in (15.0, 30.0)])
    pubs["plan"].publish(plan)
    assert ros.wait_for(lambda: chunks and len(twists) >= 3, 20.0)
    chunk = chunks[0]
    assert chunk.header.stamp == header.stamp and chunk.header.frame_id == "base_link"
    assert chunk.plan_id == "turn-left" and chunk.dimension_names == ["action"]
    assert chunk.action_space == ActionChunk.DISCRETE_NAVIGATION
    assert list(chunk.data) == [ActionChunk.NAV_TURN_LEFT] * 2 and chunk.horizon == 2
    assert [t.twist.angular.z for t in twists[:3]] == [0.7, 0.7, 0.0]   # then stop
    assert all(t.twist.linear.x == 0.0 for t in twists[:3])


def test_plan_from_before_an_episode_reset_asks_for_a_new_plan(ros) -> None:
    # The planner may plan from the last frame of an episode while the reset is in flight; in
    # lockstep simulation nothing moves until the predictor asks for a plan of the new episode.
    predictor = ros.add_node(ActionPredictorNode(
        context=ros.context, namespace="/episode", parameter_overrides=overrides({
            "device": "cpu", "autostart": False, "predictor.mode": "navigation"})))
    assert autostart(predictor)
    probe = ros.node("probe", namespace="/episode")
    requests: list[Trigger.Request] = []

    def on_replan(request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        requests.append(request)
        response.success = True
        return response

    probe.create_service(Trigger, "replan", on_replan)
    chunks: list[ActionChunk] = []
    probe.create_subscription(ActionChunk, "actions", chunks.append, RELIABLE)
    status_pub = probe.create_publisher(EpisodeStatus, "episode_status", 10)
    plan_pub = probe.create_publisher(VideoPlan, "plan", RELIABLE)
    assert ros.wait_for(lambda: status_pub.get_subscription_count()
                        and plan_pub.get_subscription_count()
                        and predictor._replan_client.service_is_ready(), 10.0)

    status_pub.publish(EpisodeStatus(header=Header(stamp=stamp(200)), episode=1, step=0,
                                     reset_reason=EpisodeStatus.RESET_TIMEOUT))
    assert ros.wait_for(lambda: predictor.health.counts().get("episode_resets") == 1)
    old = Header(stamp=stamp(199, 900_000_000), frame_id="camera")
    plan_pub.publish(VideoPlan(header=old, plan_id="from-episode-0",
                               frames=[rgb_to_image(_turned_view(15.0), old)]))
    assert ros.wait_for(lambda: requests, 10.0)
    predictor.notify_worker()                   # looking again neither asks nor counts twice
    ros.wait_for(lambda: False, 0.3)
    assert len(requests) == 1
    assert predictor.health.counts().get("plans_from_previous_episode") == 1
    assert not chunks


def test_configure_builds_the_chosen_predictor_or_fails_clearly(ros) -> None:
    def configure(namespace: str, **params) -> ActionPredictorNode:
        node = ros.add_node(ActionPredictorNode(
            context=ros.context, namespace=namespace,
            parameter_overrides=overrides({"device": "cpu", "autostart": False, **params})))
        node.trigger_configure()
        return node

    policy = configure("/dp", **{"predictor.type": "diffusion_policy"})
    assert type(policy._predictor).__name__ == "DiffusionPolicyPredictor"
    missing = configure("/dp_missing", **{"predictor.type": "diffusion_policy",
                                          "predictor.checkpoint_path": "/no/policy.pt"})
    assert missing._predictor is None and "/no/policy.pt" in missing._error
    navigation = configure("/dp_nav", **{"predictor.type": "diffusion_policy",
                                         "predictor.mode": "navigation"})
    assert navigation._predictor is None and "manipulation" in navigation._error
