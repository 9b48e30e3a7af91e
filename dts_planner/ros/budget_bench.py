"""The latency-budget mode measured in the running ROS graph: do plans fit, is the pick best.

    python -m dts_planner.bench ros_budget                          # 0.1 0.2 0.4 0.8 s
    python -m dts_planner.bench ros_budget --budgets 0.3 --plans 30 --layout shared

The planner (the shipped model and its calibration file) runs as its own process (`process`,
as ros2 launch starts it) or in the bench's process (`shared`), under a 30 Hz camera, asked for
one plan after another. Per budget (`latency_budget_s`): a few plans for the online correction,
then `--plans` measured: the fraction whose sampling time (and whose whole latency, frame
reception to publication) fit the budget, the configurations chosen, misses. In the same run,
each configuration on the calibration's speed-fidelity frontier is timed in the graph (budget
off, its sampler parameters set, as many plans as per budget); "best that met the budget" is
the most faithful of those with at least 95 % of their in-graph plans within it (the target's
own criterion), and the chosen configuration's calibrated fidelity is compared with it.
"""

from __future__ import annotations

import argparse
from collections import Counter
import statistics
import sys
from typing import Any

import numpy as np

from dts_planner.calibration import Calibration
from dts_planner.diffusion import parse_spec
from dts_planner.models import DEFAULT_WEIGHTS
from dts_planner.planning.factory import find_model_calibration
from dts_planner.ros.graph_bench import (
    Camera, graph_session, ParameterSetter, parse_size, print_figures)
from dts_planner.ros.parameters import load_defaults

BUDGETS = (0.1, 0.2, 0.4, 0.8)
WARMUP_PLANS = 3
MET_FRACTION = 0.95
"""A configuration met a budget when this share of its plans fit it (as asked of the chooser)."""


def _plans(camera: Camera, count: int) -> list[Any]:
    reports = []
    for _ in range(count):
        report = camera.plan_once()
        if report is None or report.status != 0:
            raise RuntimeError(f"plan failed: {report.message if report else 'timeout'}")
        reports.append(report)
    return reports


def _sampler_values(spec: str) -> dict[str, Any]:
    """Planner parameters that select the sampler of `spec` (others at their defaults)."""
    settings = parse_spec(spec)
    defaults = load_defaults()
    prefixes = tuple(f"{name}." for name in ("dts", "ddim", "ddpm", "dpm_solver", "paradigms",
                                             "srds", "block_speculative"))
    values = {key: value for key, value in defaults.items() if key.startswith(prefixes)}
    return {**values, "sampler": settings.name, **settings.to_flat()}


def measure_budgets(camera: Camera, set_params: ParameterSetter, calibration: Calibration,
                    budgets: list[float], plans: int) -> dict[str, Any]:
    """Figures per budget, and the in-graph times of the frontier configurations."""
    fidelity = {parse_spec(c.spec): c.fidelity_db for c in calibration.candidates}
    frontier: dict[str, list[float]] = {}
    for spec in calibration.frontier:
        refused = set_params({"latency_budget_s": 0.0, **_sampler_values(spec)})
        if refused:
            raise RuntimeError(f"{spec}: {refused}")
        frontier[spec] = [r.sampling_time_s for r in _plans(camera, plans)]
    rows = {}
    for budget in budgets:
        refused = set_params({"latency_budget_s": budget})
        if refused:
            raise RuntimeError(f"latency_budget_s={budget}: {refused}")
        _plans(camera, WARMUP_PLANS)
        reports = _plans(camera, plans)
        sampling = [r.sampling_time_s for r in reports]
        chosen = Counter(r.sampler_spec for r in reports)
        chosen_db = statistics.fmean(fidelity[parse_spec(r.sampler_spec)] for r in reports)
        met = {spec: fidelity[parse_spec(spec)] for spec, times in frontier.items()
               if sum(t <= budget for t in times) >= MET_FRACTION * len(times)}
        best_spec = max(met, key=met.get) if met else None
        rows[f"{budget:g}"] = {
            "within_budget_sampling": sum(t <= budget for t in sampling) / len(sampling),
            "within_budget_latency": sum(r.total_latency_s <= budget
                                         for r in reports) / len(reports),
            "sampling_s_median": statistics.median(sampling),
            "sampling_s_p95": float(np.percentile(sampling, 95)),
            "latency_s_median": statistics.median(r.total_latency_s for r in reports),
            "misses": sum(r.budget_miss for r in reports),
            "chosen": dict(chosen),
            "chosen_fidelity_db": chosen_db,
            "best_met_in_run": best_spec,
            "best_met_fidelity_db": met.get(best_spec, float("nan")) if best_spec else None,
            "fidelity_gap_db": (met[best_spec] - chosen_db) if best_spec else None,
        }
    return {"budgets": rows, "frontier_in_graph_s": {
        spec: {"median": statistics.median(t), "p95": float(np.percentile(t, 95)),
               "fidelity_db": fidelity[parse_spec(spec)]} for spec, t in frontier.items()}}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m dts_planner.bench ros_budget",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", nargs="+", type=float, default=list(BUDGETS))
    parser.add_argument("--layout", choices=("process", "shared"), default="process")
    parser.add_argument("--plans", type=int, default=20, help="measured plans per budget (20)")
    parser.add_argument("--size", type=parse_size, default=(640, 480), help="WxH (640x480)")
    parser.add_argument("--rate", type=float, default=30.0, help="camera frames/s (30)")
    parser.add_argument("--json", default="", help="also write the figures to this file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    args = parse_args(argv)
    calibration, note = find_model_calibration("", "", "", "cpu")
    if calibration is None:
        print(f"ros_budget: the shipped model has no calibration: {note}", file=sys.stderr)
        return 1
    params = {"device": "cpu", "replan_policy": "on_demand", "diagnostics_period_s": 0.5,
              "warmup_runs": 1, "max_image_age_s": 10.0}
    with graph_session(args.layout, args, params) as (camera, set_params):
        figures = measure_budgets(camera, set_params, calibration, args.budgets, args.plans)
    figures["setup"] = {"layout": args.layout, "model": str(DEFAULT_WEIGHTS.name),
                        "calibration": note, "plans_per_budget": args.plans,
                        "camera": f"{args.size[0]}x{args.size[1]} rgb8 at {args.rate:g} Hz"}
    print_figures(figures, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
