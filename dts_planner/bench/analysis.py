"""Report analysis: equal-fidelity comparison of the peers with DTS, the SDVG verdict."""

from __future__ import annotations

from typing import Sequence

from dts_planner.bench.block_study import BlockStudy
from dts_planner.bench.sweeps import Measured

EQUAL_FIDELITY_SLACK = 0.25          # dB a peer may fall short of DTS and still count as equal


def fidelity_of(result: Measured, ode: bool) -> float:
    """Mean PSNR (dB) vs the ODE reference if ``ode``, else vs DDPM-100."""
    return result.fidelity_ode if ode else result.fidelity


def equal_fidelity(dts: Measured, results: Sequence[Measured], method: str,
                   ode: bool) -> Measured | None:
    """Fastest case of ``method`` within the slack of DTS's fidelity (vs DDPM, or the ODE)."""
    eligible = [result for result in results if result.case.method == method
                and fidelity_of(result, ode) >= fidelity_of(dts, ode) - EQUAL_FIDELITY_SLACK]
    return min(eligible, key=lambda result: result.time, default=None)


def equal_fidelity_table(dts: Measured, results: Sequence[Measured], ode: bool) -> list[str]:
    """Markdown lines: per peer, its fastest config at DTS's fidelity, and the verdict."""
    reference = results[0].case.knob.split()[0] if ode else "100"
    lines = [f"Fidelity = PSNR vs {'DDIM' if ode else 'DDPM'}-{reference}. DTS as shipped: "
             f"{dts.time:.3f} s, {fidelity_of(dts, ode):.2f} dB; a peer counts as equal within "
             f"{EQUAL_FIDELITY_SLACK} dB.", "",
             "| peer | fastest config at DTS fidelity | its time (s) | its PSNR (dB) | "
             "DTS speed-up |", "|---|---|---|---|---|"]
    for method in ("ParaDiGMS", "SRDS", "DDIM", "DPM-Solver++"):
        peer = equal_fidelity(dts, results, method, ode)
        lines.append(f"| {method} | none reaches it | - | - | - |" if peer is None else
                     f"| {method} | {peer.case.knob} | {peer.time:.3f} | "
                     f"{fidelity_of(peer, ode):.2f} | {peer.time / dts.time:.2f}x |")
    peers = [peer for peer in (equal_fidelity(dts, results, method, ode)
                               for method in ("ParaDiGMS", "SRDS")) if peer is not None]
    if peers:
        ratio = min(peer.time for peer in peers) / dts.time
        lines += ["", f"**Target (>= 1.2x over the best of ParaDiGMS and SRDS): "
                  f"{'met' if ratio >= 1.2 else 'NOT met'}, {ratio:.2f}x.**"]
    else:
        lines += ["", "**Target: met - neither ParaDiGMS nor SRDS reaches DTS's fidelity.**"]
    return lines


def block_verdict(study: BlockStudy) -> str:
    """Return the SDVG target line: best speed-up over target-only at >= 95% fidelity."""
    base = study.results[0]
    kept = [result for result in study.results[1:]
            if result.fidelity >= 0.95 * base.fidelity]
    if not kept:
        return "**Target (>= 1.5x at >= 95% fidelity): NOT met - no setting keeps 95%.**"
    best = min(kept, key=lambda result: result.time)
    speedup = base.time / best.time
    return (f"**Target (>= 1.5x at >= 95% fidelity): {'met' if speedup >= 1.5 else 'NOT met'}, "
            f"{speedup:.2f}x with {best.case.method} {best.case.knob} "
            f"({best.fidelity / base.fidelity:.1%} of the target-only fidelity).**")
