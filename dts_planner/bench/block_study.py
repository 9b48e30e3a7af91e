"""SDVG block study: long plans of several blocks, tau at quantiles of the drafted scores."""

from __future__ import annotations

from dataclasses import dataclass, field
import math
import statistics
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from dts_planner.bench.sweeps import Measured, plan_psnr, Problem, record, run, SweepCase
from dts_planner.diffusion import DDIMSampler, DDPMSampler, DTSSampler, SampleResult
from dts_planner.models import VideoDiffusionModel
from dts_planner.peers import BlockSpeculativeSampler


@dataclass
class BlockStudy:
    """SDVG tau sweep on long plans: cases (target-only first), reference = block DDPM-100."""

    num_blocks: int
    draft_steps: int
    results: list[Measured] = field(default_factory=list)
    accepted: dict[str, list[int]] = field(default_factory=dict)       # per drafted block
    psnr_vs_target: dict[str, list[float]] = field(default_factory=dict)

    def add(self, result: Measured, out: SampleResult, reference: Tensor, target_plan: Tensor,
            log: Callable[[str], None]) -> None:
        """Record one long-plan run of ``result``'s case."""
        if result not in self.results:
            self.results.append(result)
        record(result, out, reference, log)
        self.accepted.setdefault(result.case.knob, []).extend(
            row[0] for row in out.stats.accepted_per_round[1:])
        self.psnr_vs_target.setdefault(result.case.knob, []).append(
            plan_psnr(out.sample, target_plan))

    def accept_rate(self, knob: str) -> float:
        """Fraction of drafted blocks (block 0 excluded) accepted."""
        values = self.accepted[knob]
        return statistics.fmean(values) if values else 0.0


def block_study(model: VideoDiffusionModel, problems: Sequence[Problem], num_blocks: int,
                draft_steps: int, log: Callable[[str], None]) -> BlockStudy:
    """Long plans of ``num_blocks`` blocks; target = shipped DTS, drafter = DDIM-draft_steps.

    Pass 1 runs target-only and draft-only (every draft accepted); tau is then set at the
    quartiles of the draft-only worst-frame scores and pass 2 runs those SDVG settings.
    """
    target, draft = DTSSampler(), DDIMSampler(draft_steps)
    reference = BlockSpeculativeSampler(None, DDPMSampler(), math.inf, num_blocks)
    study = BlockStudy(num_blocks, draft_steps)
    target_only = Measured(SweepCase("target only", "DTS every block",
                                     BlockSpeculativeSampler(None, target, math.inf, num_blocks)))
    draft_only = Measured(SweepCase("draft only", "tau=-inf",
                                    BlockSpeculativeSampler(draft, target, -math.inf,
                                                            num_blocks)))
    noises = [torch.randn(problem.noise.shape, generator=torch.Generator().manual_seed(
        20_000 + problem.seed)) for problem in problems]
    plans, scores = [], []
    for problem, noise in zip(problems, noises):
        ref_plan = run(reference, model, problem, noise).sample
        target_plan = run(target_only.case.sampler, model, problem, noise)
        study.add(target_only, target_plan, ref_plan, target_plan.sample, log)
        drafted = run(draft_only.case.sampler, model, problem, noise)
        study.add(draft_only, drafted, ref_plan, target_plan.sample, log)
        scores += [min(frames) for block in drafted.stats.router_scores for frames in block
                   if frames]
        plans.append((ref_plan, target_plan.sample))
    quantiles = (0.25, 0.5, 0.75)
    sdvg = [Measured(SweepCase("SDVG", f"tau={tau:.1f} dB (q{int(q * 100)})",
                               BlockSpeculativeSampler(draft, target, tau, num_blocks)))
            for tau, q in zip(np.quantile(scores, quantiles).tolist(), quantiles)]
    for problem, noise, (ref_plan, target_plan) in zip(problems, noises, plans):
        for result in sdvg:
            study.add(result, run(result.case.sampler, model, problem, noise), ref_plan,
                      target_plan, log)
    return study
