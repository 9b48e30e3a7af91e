"""Planner node with a calibrated model over DDS: auto DTS thresholds and the latency budget."""

from __future__ import annotations

import math

from dts_msgs.msg import PlanDiagnostics
from dts_msgs.srv import RequestPlan
import pytest
from rclpy.parameter import Parameter
from ros_helpers import camera_image, start_planner
from test_ros_planner_node import Probe

from dts_planner.diffusion import parse_spec


def plan(ros, probe: Probe, planner, seed: int) -> PlanDiagnostics:
    """Send a fresh frame, request a plan, return its PlanDiagnostics."""
    before = len(probe.reports)
    probe.send(planner, camera_image(probe.node, seed=seed))
    assert probe.request.call(RequestPlan.Request(), 10.0).accepted
    assert ros.wait_for(lambda: len(probe.reports) > before, 30.0)
    return probe.reports[-1]


def test_calibrated_thresholds_and_the_budget_choice_reach_the_diagnostics(
        ros, calibrated) -> None:
    checkpoint, digest, calibration, path = calibrated
    planner = start_planner(ros, "/budget", model_preset="", model_path=str(checkpoint),
                            image_size=0, sampler="dts", replan_policy="on_demand",
                            warmup_runs=0, **{"dts.target_stride": 5, "dts.chunk": 3})
    probe = Probe(ros, "/budget")
    probe.connect()
    probe.instruct(planner)
    probe.request = probe.node.create_client(RequestPlan, "request_plan")
    assert probe.request.wait_for_service(10.0)

    auto = plan(ros, probe, planner, 1)         # dts.threshold -1 (auto): the calibration's
    fitted = calibration.dts_settings(base=planner.video_planner.sampler.settings)
    assert auto.status == PlanDiagnostics.OK and path.name in auto.threshold_source
    assert f"threshold {fitted.threshold:g}" in auto.threshold_source
    assert "distance=rms" in auto.sampler_spec and math.isnan(auto.predicted_time_s)
    assert auto.latency_budget_s == 0.0
    assert auto.thresholds[0] == pytest.approx(fitted.threshold, rel=1e-6)   # float32 field

    candidates = {parse_spec(c.spec): c for c in calibration.budget_candidates()}
    slowest = max(candidates.values(), key=lambda c: c.predicted_s)
    roomy = planner.set_parameters([Parameter("latency_budget_s", value=1000.0)])[0]
    assert roomy.successful
    best = plan(ros, probe, planner, 2)
    chosen = candidates[parse_spec(best.sampler_spec)]
    assert chosen.fidelity_db == max(c.fidelity_db for c in candidates.values())
    assert best.latency_budget_s == 1000.0 and not best.budget_miss
    assert best.predicted_time_s > 0 and slowest.predicted_s > 0

    assert planner.set_parameters([Parameter("latency_budget_s", value=1e-6)])[0].successful
    missed = plan(ros, probe, planner, 3)
    fastest = min(candidates.values(), key=lambda c: c.predicted_s)
    assert missed.budget_miss and parse_spec(missed.sampler_spec) == parse_spec(fastest.spec)
    assert planner.health.counts()["budget_misses"] == 1


def test_a_budget_without_calibration_is_refused_with_the_reason(ros) -> None:
    planner = start_planner(ros, "/nobudget")           # random weights: no calibration
    result = planner.set_parameters([Parameter("latency_budget_s", value=0.5)])[0]
    assert not result.successful and "calibration" in result.reason
    assert "random-weight" in result.reason
