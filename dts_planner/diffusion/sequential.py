"""The one sequential sampler loop: one model call per timestep, then the sampler's step.

DDPM, DDIM and DPM-Solver++ differ only in their timesteps and their step function.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor

from dts_planner.diffusion.calls import ModelCalls, StepCallback
from dts_planner.diffusion.denoiser import Cond, Denoiser
from dts_planner.diffusion.stats import SampleResult, SamplerStats

#: step(index, t, model_output, x) -> x after step ``index`` at train time ``t``; shapes (B, ...)
StepFunction = Callable[[int, int, Tensor, Tensor], Tensor]


def sample_sequential(name: str, denoiser: Denoiser, noise: Tensor, cond: Cond,
                      timesteps: Sequence[int], step: StepFunction,
                      callback: StepCallback | None = None) -> SampleResult:
    """Run ``step`` after one model call at each of ``timesteps`` (descending), from ``noise``.

    Every call of the batch (B, ...) shares one time; stats are named ``name``; ``callback``
    sees every call (expected calls = len(timesteps)).
    """
    stats = SamplerStats(name)
    calls = ModelCalls(denoiser, stats, callback, expected_calls=len(timesteps))
    x = noise
    with stats.timing_total():
        for index, t in enumerate(timesteps):
            t_batch = torch.full((noise.shape[0],), int(t), dtype=torch.long, device=noise.device)
            output = calls(x, t_batch, cond, f"{name} step {index} (t={int(t)})")
            x = step(index, int(t), output, x)
    return SampleResult(x, stats)
