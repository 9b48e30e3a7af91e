"""Tables (markdown) and the frontier plot of a calibration."""

from __future__ import annotations

from pathlib import Path

import matplotlib

from dts_planner.calibration import (BudgetChooser, Calibration, Candidate, MeasuredConfig,
                                     pareto_frontier)

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (backend first)

COLORS = {"DDIM": "tab:blue", "DPM-Solver++": "tab:cyan", "DTS": "tab:red",
          "ParaDiGMS": "tab:green", "SRDS": "tab:purple"}


def _table(header: list[str], rows: list[list[str]]) -> str:
    """Return a markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def _acc(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def acceptance_table(calibration: Calibration, chunk: int | None = None,
                     target_stride: int | None = None) -> str:
    """Target acceptance -> thresholds, predicted and achieved acceptance, fidelity, time."""
    dts = calibration.dts
    chunk, target_stride = chunk or dts["chunk"], target_stride or dts["target_stride"]
    rows = [[f"{r['target']:.2f}", f"{r['threshold']:.4g}", f"{r['increment']:.4g}",
             _acc(r["predicted_acceptance"]), _acc(r["achieved_acceptance"]),
             f"{r['fidelity_db']:.2f}", f"{r['time_s']:.3f}", f"{r['predicted_s']:.3f}",
             f"{r['nfe']:.1f}", f"{r['depth']:.1f}", f"{r['rounds']:.1f}"]
            for r in calibration.acceptance_table
            if (r["chunk"], r["target_stride"]) == (chunk, target_stride)]
    return (f"DTS k={chunk}, draft stride {dts['draft_stride']}, target stride {target_stride}, "
            f"{dts['progression']} progression (thresholds RMS):\n\n" + _table(
                ["target acc.", "lambda0", "Delta", "predicted acc.", "achieved acc.",
                 f"PSNR vs {_reference(calibration)} (dB)", "measured s", "predicted s", "NFE",
                 "depth", "rounds"], rows))


def acceptance_summary(calibration: Calibration) -> str:
    """One line: how well the thresholds hit their targets over the whole DTS grid."""
    rows = [r for r in calibration.acceptance_table if r["achieved_acceptance"] is not None]
    if not rows:
        return "no DTS configurations"
    off_target = [abs(r["achieved_acceptance"] - r["target"]) for r in rows]
    off_model = [abs(r["achieved_acceptance"] - r["predicted_acceptance"]) for r in rows]
    return (f"over the {len(rows)} DTS grid entries (chunk x target stride x target): "
            f"|achieved - target| median {sorted(off_target)[len(rows) // 2]:.3f}, max "
            f"{max(off_target):.3f}; |achieved - predicted by the replay| max "
            f"{max(off_model):.3f}")


def _reference(calibration: Calibration) -> str:
    spec = calibration.info.get("reference", "ddim:num_steps=100")
    return "DDIM-" + spec.rpartition("=")[2] if spec.startswith("ddim:") else spec


def cost_table(calibration: Calibration) -> str:
    """Forward cost per batch size (ms) in one line."""
    return "forward cost per batch size (ms): " + ", ".join(
        f"B={size} {ms:.1f}" for size, ms in sorted(calibration.forward_cost_ms.items())) + \
        f"; overhead (measured / model-call time) x{calibration.overhead:.3f}" + "".join(
            f", {name} x{value:.3f}" for name, value in calibration.overhead_by_sampler.items())


def _row(c: MeasuredConfig) -> list[str]:
    return [c.label, f"`{c.spec}`", f"{c.predicted_s:.3f}", f"{c.time_s:.3f}",
            f"{c.fidelity_db:.2f}", f"{c.nfe:.1f}", f"{c.depth:.1f}", _acc(c.acceptance)]


def frontier_table(calibration: Calibration) -> str:
    """Tabulate the configurations on the predicted speed-fidelity frontier, fastest first."""
    by_spec = {c.spec: c for c in calibration.candidates}
    return _table(["configuration", "spec", "predicted s", "measured s",
                   f"PSNR vs {_reference(calibration)} (dB)", "NFE", "depth", "acceptance"],
                  [_row(by_spec[spec]) for spec in calibration.frontier])


def budget_table(calibration: Calibration) -> str:
    """Per budget: the chosen configuration, and the best calibrated DTS that fits."""
    by_spec = {c.spec: c for c in calibration.candidates}
    dts = [c for c in calibration.budget_candidates() if c.spec.startswith("dts")]
    dts_chooser = BudgetChooser(dts) if dts else None
    rows = []
    for entry in calibration.budgets:
        chosen = by_spec[entry["spec"]]
        best = "-"
        if dts_chooser is not None:
            choice = dts_chooser.choose(entry["budget_s"])
            pick = by_spec[choice.spec]
            best = ("none fits" if choice.miss else
                    f"{pick.label}: {pick.fidelity_db:.2f} dB, {pick.predicted_s:.3f} s")
        rows.append([f"{entry['budget_s']:g}", chosen.label, f"{chosen.predicted_s:.3f}",
                     f"{chosen.time_s:.3f}", f"{chosen.fidelity_db:.2f}",
                     "yes" if entry["miss"] else "no", best])
    return _table(["budget s", "chosen", "predicted s", "measured s", "PSNR (dB)", "miss",
                   "best calibrated DTS within the budget"], rows)


def report(calibration: Calibration) -> str:
    """Every table of the calibration, as printed by the command."""
    dts = calibration.dts
    return "\n\n".join([
        f"model {calibration.model.get('id', calibration.model_hash[:8])} "
        f"({calibration.model.get('summary', '')}), sha256 {calibration.model_hash}",
        f"device {calibration.device.get('name')}: {calibration.device.get('description')}, "
        f"torch {calibration.device.get('torch')} with {calibration.device.get('torch_threads')}"
        f" threads, load average {calibration.device.get('load_average')}; "
        f"{calibration.info.get('plans')} plans ({calibration.info.get('conditioning')}), "
        f"{calibration.info.get('seconds')} s",
        cost_table(calibration),
        f"calibrated DTS at target acceptance {calibration.target_acceptance:g}: "
        f"`{dts['spec']}` (predicted acceptance {_acc(dts['predicted_acceptance'])}, achieved "
        f"{_acc(dts['achieved_acceptance'])}, "
        f"{'within' if dts['within_tolerance'] else 'NOT within'} +-{dts['tolerance']:g} of "
        f"the target; {dts['fidelity_db']:.2f} dB, {dts['time_s']:.3f} s)",
        acceptance_table(calibration), acceptance_summary(calibration),
        "speed-fidelity frontier (predicted time; cost model = forward cost per batch size x "
        "overhead):\n\n" + frontier_table(calibration),
        "latency budgets:\n\n" + budget_table(calibration)])


def plot(calibration: Calibration, path: str | Path) -> Path:
    """Fidelity against predicted and against measured time, per family; frontier; budgets."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure, panels = plt.subplots(1, 2, figsize=(13, 5.5), sharey=True)
    for axes, measured in zip(panels, (False, True)):
        for family, color in COLORS.items():
            members = [c for c in calibration.candidates if c.family == family]
            if members:
                axes.scatter([c.time_s if measured else c.predicted_s for c in members],
                             [c.fidelity_db for c in members], color=color, s=22,
                             label=family + (" (calibrated thresholds)" if family == "DTS"
                                             else ""), alpha=0.8)
        points = pareto_frontier(Candidate(c.spec, c.fidelity_db,
                                           c.time_s if measured else c.predicted_s)
                                 for c in calibration.candidates)
        axes.step([p.predicted_s for p in points], [p.fidelity_db for p in points],
                  where="post", color="gray", linewidth=1, label="frontier")
        for entry in calibration.budgets:
            axes.axvline(entry["budget_s"], color="black", linestyle=":", linewidth=0.8)
        axes.set_xscale("log")
        axes.set_xlabel(("measured" if measured else "predicted (cost model)") +
                        " seconds per plan")
        axes.grid(True, which="both", alpha=0.3)
    panels[0].set_ylabel(f"PSNR vs {_reference(calibration)} (dB)")
    panels[0].legend(fontsize=8)
    figure.suptitle(f"{calibration.model.get('id', '')} on {calibration.device.get('name')} "
                    f"({calibration.device.get('description')}); budgets dotted", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
