"""Deterministic DDIM (eta = 0): the one step function shared by DDIM and DTS, and the sampler."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from dts_planner.diffusion.calls import StepCallback
from dts_planner.diffusion.denoiser import Cond, Denoiser
from dts_planner.diffusion.schedule import NoiseSchedule, PredictionType
from dts_planner.diffusion.sequential import sample_sequential
from dts_planner.diffusion.settings import checked, SamplerSettings, setting
from dts_planner.diffusion.stats import SampleResult


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


def steps_reasons(key: str, num_steps: int, schedule: NoiseSchedule | None,
                  margin: int = 0) -> list[str]:
    """Reason if ``num_steps`` exceeds T - ``margin`` of ``schedule`` (none without one)."""
    if schedule is None:
        return []
    most = schedule.num_train_timesteps - margin
    if num_steps > most:
        return [f"{key}={num_steps} must be at most {most} (the model has "
                f"T={schedule.num_train_timesteps} training timesteps): allowed 1..{most}"]
    return []


@dataclass(frozen=True)
class DDIMSettings(SamplerSettings):
    """DDIM: ``num_steps`` eta = 0 steps on AVDC's times (at most T)."""

    name = "ddim"
    num_steps: int = setting(10, "DDIM: denoising steps (model calls); at most T",
                             bounds=(1, 1000))

    @property
    def label(self) -> str:
        """``ddim<num_steps>``."""
        return f"ddim{self.num_steps}"

    def rules(self, schedule: NoiseSchedule | None) -> list[str]:
        """num_steps <= T."""
        return steps_reasons("ddim.num_steps", self.num_steps, schedule)

    def build(self) -> DDIMSampler:
        """Return ``DDIMSampler(num_steps)``."""
        return DDIMSampler(self.num_steps)


class DDIMSampler:
    """AVDC DDIM-N: eta = 0, no clamp, the last step returns the x0 prediction."""

    def __init__(self, num_steps: int) -> None:
        """Sample in ``num_steps`` steps (1 <= num_steps <= T)."""
        self.settings = checked(DDIMSettings(num_steps))
        self.num_steps, self.name = num_steps, self.settings.label

    def sample(self, denoiser: Denoiser, noise: Tensor, cond: Cond,
               generator: torch.Generator | None = None,
               callback: StepCallback | None = None) -> SampleResult:
        """Integrate from ``noise`` (B, ...) at t = T-1 to x0; ``generator`` is unused."""
        schedule = denoiser.schedule
        self.settings.require(schedule)
        times = ddim_timesteps(schedule.num_train_timesteps, self.num_steps)

        def step(index: int, t: int, output: Tensor, x: Tensor) -> Tensor:
            t_batch = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
            return ddim_step(schedule, output, x, t_batch,
                             torch.full_like(t_batch, times[index + 1]),
                             denoiser.prediction_type)
        return sample_sequential(self.name, denoiser, noise, cond, times[:-1], step, callback)
