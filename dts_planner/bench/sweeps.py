"""Report sweeps: the methods and knobs, seeded problems, and their interleaved measurement.

Fidelity is the PSNR (dB, [0, 1] image space) of each plan against the DDPM-100 plan from the
same noise and step-noise seed (and against a DDIM ODE reference); wall-clock is the median
over seeds, all methods interleaved per seed so load drifts hit them alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import statistics
from typing import Callable, Sequence

import torch
from torch import Tensor

from dts_planner.bench.common import fidelity, metaworld_condition, random_condition
from dts_planner.diffusion import (DDIMSampler, DDPMSampler, DPMSolverSampler, DTSSampler,
                                   SampleResult, Sampler)
from dts_planner.models import VideoDiffusionModel
from dts_planner.peers import ParadigmsSampler, SRDSSampler

PSNR_CAP = 100.0                     # dB shown for identical plans


@dataclass(frozen=True)
class SweepCase:
    """One method at one knob setting."""

    method: str                      # "DTS", "ParaDiGMS", "SRDS", "DDIM", "DPM-Solver++", ...
    knob: str                        # e.g. "lambda0=11 k=6"
    sampler: Sampler
    sweep: str = ""                  # which frontier curve it belongs to ("threshold", ...)


@dataclass(eq=False)
class Measured:
    """Per-seed measurements of one case."""

    case: SweepCase
    seconds: list[float] = field(default_factory=list)
    nfe: list[int] = field(default_factory=list)
    depth: list[int] = field(default_factory=list)
    psnr: list[float] = field(default_factory=list)
    psnr_ode: list[float] = field(default_factory=list)   # vs the DDIM ODE reference

    @property
    def time(self) -> float:
        """Median wall-clock (s)."""
        return statistics.median(self.seconds)

    @property
    def fidelity(self) -> float:
        """Mean PSNR (dB) vs the DDPM-100 reference."""
        return statistics.fmean(self.psnr)

    @property
    def fidelity_ode(self) -> float:
        """Mean PSNR (dB) vs the DDIM ODE reference."""
        return statistics.fmean(self.psnr_ode)


@dataclass(frozen=True)
class Problem:
    """One seed: initial noise (1, F*3, H, W), conditioning and the step-noise seed."""

    seed: int
    noise: Tensor
    cond: dict[str, Tensor]

    def generator(self) -> torch.Generator:
        """Fresh step-noise generator: every sampler of this seed draws the same noise."""
        return torch.Generator().manual_seed(10_000 + self.seed)


def make_problems(model: VideoDiffusionModel, seeds: int, metaworld: bool) -> list[Problem]:
    """Seeded noise (1, F*3, H, W) and conditioning per seed.

    ``metaworld``: the first camera frame of a Meta-World episode (task ``DEFAULT_TASKS[seed %
    11]``, variation ``seed``) and its instruction; else random (the samplers bench's).
    """
    if metaworld:
        from dts_planner.models.text_encoders import make_text_encoder
        from dts_planner.sim import DEFAULT_TASKS
        encoder = make_text_encoder(model.config.text_encoder)
        conds = [metaworld_condition(model, [(DEFAULT_TASKS[seed % len(DEFAULT_TASKS)], seed)],
                                     encoder=encoder) for seed in range(seeds)]
    else:
        conds = [random_condition(model, 1, seed) for seed in range(seeds)]
    return [Problem(seed, torch.randn(model.noise_shape(1),
                                      generator=torch.Generator().manual_seed(seed)), cond)
            for seed, cond in enumerate(conds)]


def sweep_cases(tiny: bool) -> list[SweepCase]:
    """Every method and knob of the frontier (a cut-down set for ``--tiny``)."""
    if tiny:
        return [SweepCase("DTS", "shipped", DTSSampler(), "shipped"),
                SweepCase("ParaDiGMS", "DDIM-10 w=4 tol=0.1", ParadigmsSampler(10, 4, 0.1),
                          "ddim"),
                SweepCase("SRDS", "DDIM-16 it=1", SRDSSampler(16, max_iterations=1), "ddim")]
    cases = [SweepCase("DDIM", f"{n} steps", DDIMSampler(n), "sequential") for n in (10, 20, 50)]
    cases += [SweepCase("DPM-Solver++", f"{n} steps", DPMSolverSampler(n), "sequential")
              for n in (10, 20)]
    cases.append(SweepCase("DTS", "shipped (lambda0=11 k=6)", DTSSampler(), "shipped"))
    cases += [SweepCase("DTS", f"lambda0={value:g}", DTSSampler(threshold=value), "threshold")
              for value in (0.0, 1.0, 2.0, 3.0, 5.5, 1e9)]
    cases += [SweepCase("DTS", f"k={k}", DTSSampler(chunk=k), "chunk") for k in (2, 4, 8, 10)]
    cases += [SweepCase("DTS", f"target stride 5 k={k}", DTSSampler(target_stride=5, chunk=k),
                        "target stride 5") for k in (6, 10)]
    cases += [SweepCase("ParaDiGMS", f"DDIM-{n} w={w} tol={tol:g}", ParadigmsSampler(n, w, tol),
                        f"ddim{n}")
              for n, w, tol in ((50, 8, 0.1), (50, 16, 0.1), (50, 8, 1.0), (20, 4, 0.1),
                                (20, 8, 1.0), (10, 4, 0.1), (10, 10, 1.0))]
    cases.append(SweepCase("ParaDiGMS", "DDPM-100 w=8 tol=0.1",
                           ParadigmsSampler(100, 8, 0.1, kind="ddpm"), "ddpm100"))
    cases += [SweepCase("SRDS", f"DDIM-{n} it={it}", SRDSSampler(n, max_iterations=it), f"ddim{n}")
              for n, it in ((50, 0), (50, 1), (50, 2), (25, 1), (25, 2))]
    return cases


def plan_psnr(plan: Tensor, reference: Tensor) -> float:
    """PSNR (dB) of a plan against a reference plan, capped at PSNR_CAP for identical ones."""
    return min(PSNR_CAP, fidelity(plan, reference)[1])


def run(sampler: Sampler, model: VideoDiffusionModel, problem: Problem,
        noise: Tensor | None = None) -> SampleResult:
    """Sample one problem (from ``noise`` if given) with the problem's step-noise generator."""
    return sampler.sample(model, problem.noise if noise is None else noise, problem.cond,
                          problem.generator())


def measure(model: VideoDiffusionModel, cases: Sequence[SweepCase], problems: Sequence[Problem],
            ode_steps: int, log: Callable[[str], None]) -> tuple[Measured, list[Measured]]:
    """Run the references and every case on every problem, seeds outermost (interleaved).

    Returns the DDPM-100 reference and the cases, the first of which is the DDIM-``ode_steps``
    ODE reference (a sequential case itself).
    """
    ref = Measured(SweepCase("DDPM", "100 steps (reference)", DDPMSampler(), "reference"))
    ode = Measured(SweepCase("DDIM", f"{ode_steps} steps (ODE reference)",
                             DDIMSampler(ode_steps), "sequential"))
    results = [ode] + [Measured(case) for case in cases]
    for problem in problems:
        ref_out, ode_out = run(ref.case.sampler, model, problem), run(ode.case.sampler, model,
                                                                      problem)
        record(ref, ref_out, ref_out.sample, log, ode_out.sample)
        record(ode, ode_out, ref_out.sample, log, ode_out.sample)
        for result in results[1:]:
            record(result, run(result.case.sampler, model, problem), ref_out.sample, log,
                   ode_out.sample)
    return ref, results


def record(result: Measured, out: SampleResult, reference: Tensor,
           log: Callable[[str], None], ode_reference: Tensor | None = None) -> None:
    """Append one run's wall time, NFE, depth and PSNR vs the references; log a line."""
    result.seconds.append(out.stats.wall_time)
    result.nfe.append(out.stats.nfe)
    result.depth.append(out.stats.depth)
    result.psnr.append(plan_psnr(out.sample, reference))
    if ode_reference is not None:
        result.psnr_ode.append(plan_psnr(out.sample, ode_reference))
    log(f"{result.case.method:12s} {result.case.knob:28s} {out.stats.wall_time:7.2f} s "
        f"nfe {out.stats.nfe:4d} depth {out.stats.depth:4d} psnr {result.psnr[-1]:5.1f} dB")
