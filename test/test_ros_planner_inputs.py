"""Planner node, enumerated: every parameter at and past its bounds, and a fuzz of bad inputs.

Every value the node accepts must plan; every value it refuses must come with a reason naming
the parameter. A sampler setting is accepted exactly when the registry's validation against the
model's schedule passes, and test_diffusion_registry plans every such setting on a tiny model;
every sampler plans here through the node. At least 1,000 malformed messages leave the node
alive, each counted under its reason.
"""

from __future__ import annotations

import math

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from dts_msgs.msg import PlanDiagnostics
from dts_msgs.srv import RequestPlan
import numpy as np
import pytest
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter
from ros_helpers import camera_image, overrides, stamp, start_planner, TINY_PLANNER
from test_ros_planner_node import Probe

from dts_planner.diffusion import NoiseSchedule
from dts_planner.ros import parameters, planner_parameters
from dts_planner.ros.compute import compute_thread
from dts_planner.ros.parameters import ParameterError
from dts_planner.ros.planner_node import PlannerNode

SAMPLER_PREFIXES = tuple(f"{name}." for name in planner_parameters.SAMPLERS)
#: Read-only values that change what is planned: activated and planned with (tiny model).
PLANNING_READ_ONLY = ("image_size", "warmup_runs")
#: Short runs of the samplers whose defaults take 100-150 model calls: each sampler still plans
#: through the node's path; its settings are enumerated below and in test_diffusion_registry.
SHORT_SAMPLERS = {"paradigms.num_steps": 10, "srds.num_steps": 9,
                  "block_speculative.target": "ddim", "dpm_solver.num_steps": 2}


def candidates(spec: parameters.ParamSpec, default) -> list:
    """Values at each bound and one past it; each choice and one that is not."""
    if spec.choices:
        return [*spec.choices, "not-a-choice"]
    if spec.bounds is None:
        return [not default] if isinstance(default, bool) else []
    low, high = spec.bounds
    if isinstance(default, int) and not isinstance(default, bool):
        return [int(low), int(high), int(low) - 1, int(high) + 1]
    step = max(1e-3, 1e-3 * abs(high - low))
    return [float(low), float(high), float(low) - step, float(high) + step]


def plan_once(ros, probe: Probe, planner: PlannerNode, seed: int) -> PlanDiagnostics:
    """Stream fresh frames (10 Hz) and ask for a plan until one is reported; return it."""
    before = len(probe.reports)

    def answered() -> list[PlanDiagnostics]:   # a stale leftover frame is reported, skipped
        return [r for r in probe.reports[before:] if r.status != PlanDiagnostics.STALE_INPUT]
    assert probe.request.call(RequestPlan.Request(), 10.0).accepted
    for frame in range(200):
        probe.images.publish(camera_image(probe.node, seed=seed + frame))
        if ros.wait_for(answered, 0.1):
            return answered()[0]
    raise AssertionError("no plan within 20 s")


def sample_directly(planner: PlannerNode) -> None:
    """Plan with the node's current sampler settings through its own sampling path."""
    planner._choose_sampler(parameters.current(planner, planner_parameters.PLANNER_PARAMS))
    plan = compute_thread().call(planner._sample, np.zeros((16, 16, 3), np.uint8),
                                 "open the door", 0)
    assert plan.frames.shape[0] % 7 == 0 and plan.stats.nfe >= 1   # block plans: 7 per block


@pytest.mark.long_running
def test_every_runtime_value_at_and_past_its_bounds(ros) -> None:
    planner = start_planner(ros, "/enum", replan_policy="on_demand", warmup_runs=0,
                            **SHORT_SAMPLERS)
    probe = Probe(ros, "/enum")
    probe.connect()
    probe.instruct(planner)
    probe.request = probe.node.create_client(RequestPlan, "request_plan")
    assert probe.request.wait_for_service(10.0)
    defaults = {**parameters.load_defaults(), **TINY_PLANNER, **SHORT_SAMPLERS}
    checked = planned = 0
    for spec in planner_parameters.PLANNER_PARAMS:
        if not spec.runtime:
            continue
        sampler = spec.name.split(".")[0] if spec.name.startswith(SAMPLER_PREFIXES) else "ddim"
        for value in candidates(spec, defaults[spec.name]):
            assert planner.set_parameters_atomically(overrides(
                {"sampler": sampler, **{k: v for k, v in defaults.items()
                                        if k.startswith(sampler + ".")}})).successful
            values = {**parameters.current(planner, planner_parameters.PLANNER_PARAMS),
                      spec.name: value}
            expected = spec.check(value) is None and not (
                spec.name.startswith(SAMPLER_PREFIXES)
                and planner_parameters.sampler_reasons(values, NoiseSchedule.avdc())) and not (
                spec.name == "latency_budget_s" and value > 0)   # no calibration: random model
            result = planner.set_parameters_atomically([Parameter(spec.name, value=value)])
            checked += 1
            assert result.successful == expected, (spec.name, value, result.reason)
            if not result.successful:
                assert spec.name in result.reason, (spec.name, value, result.reason)
                continue
            if spec.name.startswith(SAMPLER_PREFIXES):
                # accepted = the registry's validate() against the model's schedule, whose
                # test plans every accepted setting on a tiny model (test_diffusion_registry)
                continue
            if spec.name == "sampler":
                sample_directly(planner)      # every sampler through the node's own path
            else:
                report = plan_once(ros, probe, planner, 1000 * checked)
                assert report.status == PlanDiagnostics.OK, (spec.name, value, report.message)
            planned += 1
            planner.set_parameters_atomically([Parameter(spec.name,
                                                         value=defaults[spec.name])])
    assert checked > 100 and planned > 20


@pytest.mark.long_running
def test_every_read_only_value_at_and_past_its_bounds(ros) -> None:
    defaults = parameters.load_defaults()
    for spec in planner_parameters.PLANNER_PARAMS:
        if spec.runtime or (spec.bounds is None and not spec.choices):
            continue
        for value in candidates(spec, defaults[spec.name]):
            accepted = spec.check(value) is None
            try:
                node = ros.add_node(PlannerNode(
                    context=ros.context, namespace=f"/ro{abs(hash((spec.name, value)))}",
                    # one model call a plan, no warm-up plan unless under test: a plan at
                    # 256 px takes 0.5 s a model call
                    parameter_overrides=overrides({**TINY_PLANNER, "warmup_runs": 0,
                                                   "ddim.num_steps": 1, spec.name: value})))
            except ParameterError as error:
                assert not accepted and spec.name in str(error), (spec.name, value, error)
                assert "restart" in str(error)
                continue
            assert accepted, (spec.name, value)
            if spec.name == "dtype" and value == "float16":    # needs CUDA: configure says so
                assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
                assert "float16" in node._error
            elif spec.name in PLANNING_READ_ONLY:
                assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
                assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS, spec.name
                plan = node.video_planner.plan(np.zeros((24, 24, 3), np.uint8), "open the door")
                assert plan.frames.shape[0] == 7 and plan.stats.nfe == 1
            ros.destroy_node(node)


def bad_images(node, count: int) -> list[tuple[str, object]]:
    """`count` malformed images, each with one defect, and the counter it must land in."""
    rng = np.random.default_rng(7)
    now = node.get_clock().now().nanoseconds

    def image():
        return camera_image(node, size=int(rng.integers(4, 40)), seed=int(rng.integers(99)))

    def encoding(msg):
        msg.encoding = rng.choice(["yuv422", "", "16UC1", "rgb16", "x" * 300, "RGB8", "jpeg"])
        return "unsupported_encoding"

    def empty(msg):
        msg.width = 0 if rng.random() < 0.5 else msg.width
        msg.height = 0 if msg.width else msg.height
        return "empty_image"

    def step(msg):
        msg.step = int(rng.integers(0, msg.width * 3))
        return "bad_step"

    def truncated(msg):
        msg.data = bytes(msg.data)[:int(rng.integers(0, len(msg.data)))]
        return "truncated_data"

    def negative(msg):
        msg.header.stamp = stamp(-int(rng.integers(1, 2**31)), 0)
        return "negative_stamp"

    def nanosec(msg):
        msg.header.stamp = stamp(msg.header.stamp.sec, int(rng.integers(10**9, 2**32)))
        return "bad_nanosec"

    def future(msg):
        ahead = int(rng.choice([3600 * 10**9, 10 * 10**9, 2**31 * 10**9 - now - 1]))
        msg.header.stamp = stamp((now + ahead) // 10**9, 0)
        return "future_stamp"

    defects = (encoding, empty, step, truncated, negative, nanosec, future)
    made = []
    for i in range(count):
        msg = image()
        made.append((defects[i % len(defects)](msg), msg))
    return made


def rss_mib() -> float:
    """Return this process's resident set size, MiB."""
    with open("/proc/self/status", encoding="ascii") as status:
        return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmRSS"))


def test_fuzz_of_malformed_messages_is_counted_and_survived(ros) -> None:
    planner = start_planner(ros, "/fuzz", replan_policy="on_demand", warmup_runs=0,
                            **{"image_qos.reliability": "reliable", "image_qos.depth": 100})
    probe = Probe(ros, "/fuzz")
    statuses: list = []
    probe.node.create_subscription(
        DiagnosticArray, "/diagnostics",
        lambda m: statuses.extend(s for s in m.status if s.name.startswith("/fuzz/planner")), 10)
    probe.connect()
    probe.instruct(planner)
    request = probe.node.create_client(RequestPlan, "request_plan")
    assert request.wait_for_service(10.0)
    messages = bad_images(probe.node, 1050)
    rss_before = rss_mib()
    for start in range(0, len(messages), 50):
        for _, msg in messages[start:start + 50]:
            probe.images.publish(msg)
        assert ros.wait_for(lambda: planner.health.counts().get("images_received", 0)
                            >= start + min(50, len(messages) - start), 20.0)
    refused = [request.call(RequestPlan.Request(seed=seed), 10.0)
               for seed in (-2, -(2**40), 2**31, 2**62)]
    refused.append(request.call(RequestPlan.Request(min_stamp=stamp(-3)), 10.0))
    counts = planner.health.counts()
    expected: dict[str, int] = {}
    for reason, _ in messages:
        expected[reason] = expected.get(reason, 0) + 1
    got = {reason: counts.get(f"images_invalid_{reason}", 0) for reason in expected}
    assert got == expected and counts["images_received"] == len(messages)
    assert not any(answer.accepted for answer in refused)
    assert all(answer.message for answer in refused)
    print(f"fuzz: sent {len(messages)} images + {len(refused)} requests; received "
          f"{counts['images_received']}; counted {got}; RSS {rss_before:.0f} -> "
          f"{rss_mib():.0f} MiB")
    assert not probe.plans                      # nothing was planned from a bad frame
    assert ros.wait_for(lambda: any(s.level == DiagnosticStatus.WARN and "invalid" in s.message
                                    for s in statuses), 5.0)
    good = camera_image(probe.node)             # ... and the node still plans
    probe.send(planner, good)
    assert request.call(RequestPlan.Request(), 10.0).accepted
    assert ros.wait_for(lambda: probe.plans, 20.0) and probe.plans[-1].header == good.header
    assert math.isfinite(rss_mib())
