"""Report plots (matplotlib, Agg): speed-fidelity frontiers and the SDVG tau sweep."""

from __future__ import annotations

from pathlib import Path
import statistics
from typing import Sequence

import matplotlib
import numpy as np

from dts_planner.bench.analysis import fidelity_of
from dts_planner.bench.block_study import BlockStudy
from dts_planner.bench.sweeps import Measured, PSNR_CAP

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (backend first)


def plot_frontier(ref: Measured, results: Sequence[Measured], path: Path, x_depth: bool) -> None:
    """Fidelity (vs DDPM-100, and vs the ODE reference) against wall-clock or depth, one PNG.

    Each method and sweep is one curve. Samplers of the DDPM path (ParaDiGMS DDPM) sit far
    above the others against DDPM-100 and are left off that panel's scale (see the table).
    """
    figure, panels = plt.subplots(1, 2, figsize=(13, 5.5))
    groups: dict[tuple[str, str], list[Measured]] = {}
    for result in results:
        groups.setdefault((result.case.method, result.case.sweep), []).append(result)
    for axes, ode in zip(panels, (False, True)):
        axes.set_prop_cycle(color=plt.cm.tab20.colors)
        for (method, sweep), members in groups.items():
            xs = np.array([statistics.median(m.depth) if x_depth else m.time for m in members])
            ys = np.array([fidelity_of(m, ode) for m in members])
            order = np.argsort(xs)
            axes.plot(xs[order], ys[order], marker="*" if sweep == "shipped" else "o",
                      markersize=14 if sweep == "shipped" else 5,
                      label=f"{method} {sweep}".strip())
        on_scale = [fidelity_of(r, ode) for r in results
                    if ode or not r.case.sweep.startswith("ddpm")]
        axes.set_ylim(min(on_scale) - 0.5, min(max(on_scale), PSNR_CAP - 40) + 0.5)
        axes.axvline(statistics.median(ref.depth) if x_depth else ref.time, color="gray",
                     linestyle=":", label="DDPM-100 (reference)")
        axes.set_xscale("log")
        axes.set_xlabel("sequential model calls (depth)" if x_depth
                        else "wall-clock per plan (s)")
        axes.set_ylabel(f"PSNR vs {results[0].case.method}-{results[0].case.knob.split()[0]} "
                        "plan (dB)" if ode else "PSNR vs DDPM-100 plan (dB)")
        axes.grid(True, which="both", alpha=0.3)
    panels[1].legend(fontsize=7, ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_blocks(study: BlockStudy, path: Path) -> None:
    """SDVG: fidelity vs speed-up over target-only, one point per tau."""
    base = study.results[0].time
    figure, axes = plt.subplots(figsize=(6, 4.5))
    for result in study.results:
        axes.scatter(base / result.time, result.fidelity)
        axes.annotate(f"{result.case.method} {result.case.knob}", (base / result.time,
                      result.fidelity), fontsize=7)
    axes.set_xlabel("speed-up over target-only long plan (x)")
    axes.set_ylabel("PSNR vs block DDPM-100 plan (dB)")
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
