"""Deterministic DDIM (eta = 0): the one step function shared by DDIM and DTS, and the sampler."""

from __future__ import annotations

import torch
from torch import Tensor

from dts_planner.diffusion.denoiser import Cond, Denoiser, predict
from dts_planner.diffusion.schedule import NoiseSchedule, PredictionType
from dts_planner.diffusion.stats import SampleResult, SamplerStats


def ddim_step(schedule: NoiseSchedule, model_output: Tensor, x_t: Tensor, t: Tensor,
              t_next: Tensor, prediction_type: PredictionType) -> Tensor:
    """One eta = 0 DDIM step from times ``t`` to ``t_next`` (both (B,), per sample).

    x_next = sqrt(a_next) * x0 + sqrt(1 - a_next) * eps, no clamp; ``t_next = -1`` returns
    the x0 prediction. Shapes: ``model_output``, ``x_t`` and the result are (B, ...).
    """
    x0, eps = schedule.predict_x0_eps(model_output, x_t, t, prediction_type)
    sqrt_a_next, sqrt_1ma_next = schedule.signal_noise_scales(t_next, x_t)
    return sqrt_a_next * x0 + sqrt_1ma_next * eps


def ddim_timesteps(num_train_timesteps: int, num_steps: int) -> list[int]:
    """Return AVDC's DDIM times: ``linspace(-1, T-1, S+1)`` cast to int, descending (S+1)."""
    times = torch.linspace(-1, num_train_timesteps - 1, steps=num_steps + 1).int()
    return list(reversed(times.tolist()))


class DDIMSampler:
    """AVDC DDIM-N: eta = 0, no clamp, the last step returns the x0 prediction."""

    def __init__(self, num_steps: int) -> None:
        """Sample in ``num_steps`` steps (1 <= num_steps <= T)."""
        if num_steps < 1:
            raise ValueError(f"num_steps must be >= 1, got {num_steps}")
        self.num_steps = num_steps
        self.name = f"ddim{num_steps}"

    def sample(self, denoiser: Denoiser, noise: Tensor, cond: Cond,
               generator: torch.Generator | None = None) -> SampleResult:
        """Integrate from ``noise`` (B, ...) at t = T-1 to x0; ``generator`` is unused."""
        schedule = denoiser.schedule
        if self.num_steps > schedule.num_train_timesteps:
            raise ValueError(f"num_steps must be <= {schedule.num_train_timesteps}, "
                             f"got {self.num_steps}")
        stats = SamplerStats(self.name)
        times = ddim_timesteps(schedule.num_train_timesteps, self.num_steps)
        batch = noise.shape[0]
        x = noise
        with stats.timing_total():
            for step, (t, t_next) in enumerate(zip(times[:-1], times[1:])):
                t_batch = torch.full((batch,), t, dtype=torch.long, device=noise.device)
                output = predict(denoiser, x, t_batch, cond, f"{self.name} step {step}")
                stats.record_call(batch)
                x = ddim_step(schedule, output, x, t_batch, torch.full_like(t_batch, t_next),
                              denoiser.prediction_type)
        return SampleResult(x, stats)
