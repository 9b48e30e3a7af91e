"""Planner node on a real rclpy graph over DDS: plans, stamps, parameters, lifecycle, bad input."""

from __future__ import annotations

import threading
import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from dts_msgs.msg import Instruction, PlanDiagnostics, VideoPlan
from dts_msgs.srv import RequestPlan
from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
import numpy as np
import pytest
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.qos import QoSProfile
from ros_helpers import camera_image, instruction, overrides, start_planner, TINY_PLANNER
from sensor_msgs.msg import Image
import torch

from dts_planner.ros.planner_node import PlannerNode
from dts_planner.ros.qos import latched_qos, make_qos
from dts_planner.ros.spin import autostart, cancel_transitions, StopRequest

RELIABLE = make_qos("reliable", 10)


class Probe:
    """A test node publishing the planner's inputs and recording its outputs in `namespace`."""

    def __init__(self, ros, namespace: str) -> None:
        """Create publishers and recording subscriptions."""
        self.ros = ros
        self.node = ros.node("probe", namespace=namespace)
        self.plans: list[VideoPlan] = []
        self.reports: list[PlanDiagnostics] = []
        self.node.create_subscription(VideoPlan, "plan", self.plans.append, RELIABLE)
        self.node.create_subscription(PlanDiagnostics, "plan_diagnostics", self.reports.append,
                                      RELIABLE)
        self.images = self.node.create_publisher(Image, "image", make_qos("reliable", 10))
        self.instructions = self.node.create_publisher(Instruction, "instruction",
                                                       latched_qos())

    def connect(self) -> None:
        """Wait until the planner subscribed to both inputs."""
        assert self.ros.wait_for(lambda: self.images.get_subscription_count() > 0
                                 and self.instructions.get_subscription_count() > 0, 10.0)

    def instruct(self, planner: PlannerNode, text: str = "open the door") -> None:
        """Publish an instruction and wait until the planner has it."""
        before = planner.health.counts().get("instructions_received", 0)
        self.instructions.publish(instruction(text))
        assert self.ros.wait_for(
            lambda: planner.health.counts().get("instructions_received", 0) > before, 10.0)

    def send(self, planner: PlannerNode, image: Image) -> None:
        """Publish an image and wait until the planner received it (depth-1 camera QoS)."""
        before = planner.health.counts().get("images_received", 0)
        self.images.publish(image)
        assert self.ros.wait_for(
            lambda: planner.health.counts().get("images_received", 0) > before, 10.0)

    def statuses(self) -> list[int]:
        """Status of every PlanDiagnostics received."""
        return [r.status for r in self.reports]


def test_image_and_instruction_give_a_stamped_plan(ros) -> None:
    planner = start_planner(ros, "/p1")
    probe = Probe(ros, "/p1")
    probe.connect()
    probe.instruct(planner)
    image = camera_image(probe.node)
    probe.send(planner, image)
    assert ros.wait_for(lambda: probe.plans and probe.reports, 20.0)
    plan, report = probe.plans[0], probe.reports[0]
    assert plan.header == image.header and report.header == image.header
    assert report.status == PlanDiagnostics.OK and plan.diagnostics.plan_id == plan.plan_id
    assert report.plan_id == plan.plan_id and plan.instruction == "open the door"
    assert plan.task_id == "door-open-v3" and report.sampler.startswith("ddim")
    assert report.nfe == 2
    assert report.model_id.startswith("random:default") and report.device == "cpu"
    assert 0 < report.sampling_time_s <= report.total_latency_s
    assert len(plan.frames) == 7
    assert all(f.header == image.header and (f.height, f.width, f.encoding) == (16, 16, "rgb8")
               for f in plan.frames)
    assert planner.health.counts()["plans_published"] == 1


def test_parameters_are_validated_and_take_effect(ros) -> None:
    planner = start_planner(ros, "/p2")
    probe = Probe(ros, "/p2")
    probe.connect()
    probe.instruct(planner)

    def set_params(**values):
        (result,) = planner.set_parameters_atomically(overrides(values)),
        return result

    bad = set_params(sampler="euler")
    assert not bad.successful and "sampler='euler'" in bad.reason
    # every sampler's settings are checked against the model's T = 100, in use or not
    bad = set_params(**{"dts.target_stride": 3})
    assert not bad.successful and "allowed 1, 2, 5, 10" in bad.reason
    for key, value in (("ddim.num_steps", 500), ("paradigms.num_steps", 30),
                       ("dpm_solver.num_steps", 500), ("dts.draft_stride", 9)):
        result = set_params(**{key: value})
        assert not result.successful and key in result.reason, (key, result.reason)
    assert not set_params(max_image_age_s=-1.0).successful    # below the declared range
    assert not set_params(device="cpu").successful             # read-only
    assert set_params(**{"dts.draft_stride": 20, "dts.target_stride": 5}).successful
    assert set_params(sampler="dpm_solver", **{"dpm_solver.num_steps": 3}).successful
    assert planner.get_parameter("sampler").value == "dpm_solver"
    probe.send(planner, camera_image(probe.node))
    assert ros.wait_for(lambda: probe.reports, 20.0)
    assert probe.reports[0].sampler == "dpm_solver3" and probe.reports[0].nfe == 3


def test_lifecycle_transitions_over_services(ros) -> None:
    planner = ros.add_node(PlannerNode(context=ros.context, namespace="/p3",
                                       parameter_overrides=overrides(TINY_PLANNER)))
    client_node = ros.node("lifecycle_client", namespace="/p3")
    change = client_node.create_client(ChangeState, "planner/change_state")
    get = client_node.create_client(GetState, "planner/get_state")
    assert change.wait_for_service(10.0) and get.wait_for_service(10.0)

    def transition(transition_id: int) -> bool:
        request = ChangeState.Request()
        request.transition.id = transition_id
        return change.call(request, timeout_sec=60.0).success

    def state() -> int:
        return get.call(GetState.Request(), timeout_sec=10.0).current_state.id

    assert state() == State.PRIMARY_STATE_UNCONFIGURED
    assert transition(Transition.TRANSITION_CONFIGURE)
    assert state() == State.PRIMARY_STATE_INACTIVE and planner._planner is None
    assert transition(Transition.TRANSITION_ACTIVATE)
    assert state() == State.PRIMARY_STATE_ACTIVE and planner._planner is not None
    assert transition(Transition.TRANSITION_DEACTIVATE)
    assert state() == State.PRIMARY_STATE_INACTIVE and planner._planner is None
    assert transition(Transition.TRANSITION_CLEANUP)
    assert state() == State.PRIMARY_STATE_UNCONFIGURED


def test_configure_rejects_missing_cuda_and_bad_model(ros) -> None:
    missing = ros.add_node(PlannerNode(
        context=ros.context, namespace="/p4c", parameter_overrides=overrides(
            {**TINY_PLANNER, "model_preset": "", "model_path": "/no/such/model.pt"})))
    assert missing.trigger_configure() == TransitionCallbackReturn.FAILURE
    assert "/no/such/model.pt" in missing._error and "restart" in missing._error
    if torch.cuda.is_available():
        pytest.skip("the CUDA-absent branch cannot happen on this machine")
    planner = ros.add_node(PlannerNode(
        context=ros.context, namespace="/p4",
        parameter_overrides=overrides({**TINY_PLANNER, "device": "cuda:0"})))
    assert planner.trigger_configure() == TransitionCallbackReturn.FAILURE
    assert "CUDA" in planner._error and "allow_cpu_fallback:=true" in planner._error
    assert "restart" in planner._error and "ros2 lifecycle" not in planner._error
    fallback = ros.add_node(PlannerNode(
        context=ros.context, namespace="/p4b", parameter_overrides=overrides(
            {**TINY_PLANNER, "device": "cuda:0", "allow_cpu_fallback": True})))
    assert fallback.trigger_configure() == TransitionCallbackReturn.SUCCESS


def test_bad_inputs_are_counted_and_the_node_survives(ros) -> None:
    planner = start_planner(ros, "/p5")
    probe = Probe(ros, "/p5")
    probe.connect()
    good = camera_image(probe.node)
    probe.send(planner, good)                       # no instruction yet
    assert ros.wait_for(lambda: PlanDiagnostics.NO_INSTRUCTION in probe.statuses(), 10.0)
    probe.instruct(planner, "")      # empty instruction
    probe.send(planner, camera_image(probe.node))
    assert ros.wait_for(lambda: probe.statuses().count(PlanDiagnostics.NO_INSTRUCTION) == 2)
    probe.instruct(planner)
    bad_images = []
    for mutate in (lambda m: setattr(m, "encoding", "yuv422"),
                   lambda m: (setattr(m, "width", 0), setattr(m, "step", 0)),
                   lambda m: setattr(m, "step", 5),
                   lambda m: setattr(m, "data", bytes(m.data)[:10])):
        image = camera_image(probe.node)
        mutate(image)
        bad_images.append(image)
        probe.send(planner, image)
    probe.send(planner, camera_image(probe.node, age_s=30.0))      # stale
    assert ros.wait_for(lambda: PlanDiagnostics.STALE_INPUT in probe.statuses(), 10.0)
    counts = planner.health.counts()
    assert {key: counts.get(f"images_invalid_{key}") for key in (
        "unsupported_encoding", "empty_image", "bad_step", "truncated_data")} == {
        "unsupported_encoding": 1, "empty_image": 1, "bad_step": 1, "truncated_data": 1}
    assert counts["images_stale"] == 1 and not probe.plans      # the stale frame: no plan
    stale = next(r for r in probe.reports if r.status == PlanDiagnostics.STALE_INPUT)
    assert stale.image_age_s > 29.0
    with torch.no_grad():                                          # the model now yields NaN
        for weight in planner._planner.model.parameters():
            weight.fill_(float("nan"))
    probe.send(planner, camera_image(probe.node))
    assert ros.wait_for(lambda: PlanDiagnostics.REJECTED_NAN in probe.statuses(), 20.0)
    assert not probe.plans and planner.health.counts()["plans_rejected_nan"] == 1
    planner.trigger_deactivate()                                   # reload clean weights
    assert ros.wait_for(lambda: probe.images.get_subscription_count() == 0, 10.0)
    planner.trigger_activate()                                     # subscribes anew:
    probe.connect()                                                # wait for the match
    probe.send(planner, camera_image(probe.node))
    assert ros.wait_for(lambda: probe.plans, 20.0)                 # still alive and planning


def test_on_demand_plans_once_per_request_from_a_new_enough_frame(ros) -> None:
    planner = start_planner(ros, "/p6", replan_policy="on_demand")
    probe = Probe(ros, "/p6")
    probe.connect()
    probe.instruct(planner)
    request = probe.node.create_client(RequestPlan, "request_plan")
    assert request.wait_for_service(10.0)
    first = camera_image(probe.node)
    probe.send(planner, first)        # no request, no plan: see the first plan's header below
    newer = camera_image(probe.node, seed=3)                    # stamped after `first`
    answer = request.call(RequestPlan.Request(min_stamp=newer.header.stamp, seed=77), 10.0)
    assert answer.accepted
    assert not ros.wait_for(lambda: probe.reports, 0.5)        # `first` is too old for it
    probe.send(planner, newer)
    # the plan and its report come on two topics: wait for both
    assert ros.wait_for(lambda: probe.plans and probe.reports, 20.0)
    # one worker plans and publishes in order: a plan of `first` would have come before it
    assert probe.plans[0].header == newer.header and probe.reports[0].seed == 77
    refused = request.call(RequestPlan.Request(seed=-5), 10.0)
    assert not refused.accepted and "seed" in refused.message
    assert request.call(RequestPlan.Request(), 10.0).accepted   # defaults: newest frame
    assert ros.wait_for(lambda: len(probe.plans) == len(probe.reports) == 2, 20.0)
    assert probe.plans[1].header == newer.header and probe.reports[1].seed == -1
    assert not ros.wait_for(lambda: len(probe.plans) > 2, 0.5)
    assert planner.health.counts()["plan_requests"] == 3


def test_deactivate_cancels_the_plan_in_flight(ros) -> None:
    planner = start_planner(ros, "/p8", sampler="ddpm", image_size=64,
                            replan_policy="on_demand", warmup_runs=0)
    probe = Probe(ros, "/p8")
    probe.connect()
    probe.instruct(planner)
    probe.send(planner, camera_image(probe.node))
    request = probe.node.create_client(RequestPlan, "request_plan")
    assert request.wait_for_service(10.0) and request.call(RequestPlan.Request(), 10.0).accepted
    assert ros.wait_for(lambda: planner._in_flight is not None, 10.0)
    ros.wait_for(lambda: False, 0.2)
    started = time.monotonic()
    assert planner.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    assert time.monotonic() - started < 2.0
    assert ros.wait_for(lambda: PlanDiagnostics.CANCELLED in probe.statuses(), 5.0)
    assert not probe.plans and planner.health.counts()["plans_cancelled"] == 1


def test_a_stop_during_the_warm_up_cancels_it(ros) -> None:
    """A stop request (SIGINT, SIGTERM under run_nodes) ends the start-up's warm-up plans."""
    planner = ros.add_node(PlannerNode(
        context=ros.context, namespace="/p9", parameter_overrides=overrides(
            {**TINY_PLANNER, "sampler": "ddpm", "warmup_runs": 10})))   # 1,000 model calls
    stop = StopRequest(lambda: cancel_transitions([planner]))
    try:
        started: list[bool] = []
        thread = threading.Thread(target=lambda: started.append(autostart(planner)))
        thread.start()
        assert ros.wait_for(lambda: planner.video_planner is not None, 10.0)   # warming up
        asked = time.monotonic()
        stop.request()
        thread.join(10.0)
        assert started == [False] and time.monotonic() - asked < 1.0
    finally:
        stop.restore()
    assert planner.video_planner is None and "cancelled" in planner._note


def test_diagnostics_and_lazy_debug_image(ros) -> None:
    planner = start_planner(ros, "/p7", no_input_warn_s=0.5, diagnostics_period_s=0.2,
                            dtype="bfloat16")
    probe = Probe(ros, "/p7")
    statuses: list[DiagnosticStatus] = []
    probe.node.create_subscription(
        DiagnosticArray, "/diagnostics",
        lambda m: statuses.extend(s for s in m.status if s.name.startswith("/p7/planner")), 10)
    assert ros.wait_for(lambda: any(s.level == DiagnosticStatus.WARN
                                    and "no input" in s.message for s in statuses), 10.0)
    probe.connect()
    probe.instruct(planner)
    probe.send(planner, camera_image(probe.node))
    assert ros.wait_for(lambda: probe.plans, 20.0)
    assert not probe.node.count_publishers("/p7/planner/debug/plan_image") == 0
    debug: list[Image] = []
    probe.node.create_subscription(Image, "/p7/planner/debug/plan_image", debug.append,
                                   QoSProfile(depth=1))
    assert ros.wait_for(lambda: probe.node.count_subscribers(
        "/p7/planner/debug/plan_image") > 0, 5.0)
    probe.send(planner, camera_image(probe.node, seed=1))
    assert ros.wait_for(lambda: debug, 20.0)
    assert (debug[0].height, debug[0].width) == (16, 16 * 8)      # source + 7 frames

    def last_values() -> dict[str, str]:
        return {kv.key: kv.value for kv in statuses[-1].values}
    assert ros.wait_for(lambda: last_values().get("plans_published") == "2", 5.0)
    values = last_values()
    assert values["plan_in_flight_s"] == "0"                    # idle again
    assert values["device"] == "cpu" and values["lifecycle_state"] == "active"
    assert values["dtype"] == "bfloat16"
    assert np.isfinite(float(values["plan_latency_s_median"]))
    assert 0 <= float(values["ros_overhead_s_p95"]) < float(values["plan_latency_s_median"])
