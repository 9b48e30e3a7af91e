"""Ancestral DDPM over every training step (AVDC-100) on diffusers' ``DDPMScheduler``.

AVDC's ``p_sample_loop``: x0 from the model, clamped to [-1, 1]; the posterior mean of
q(x_{t-1} | x_t, x0) plus sqrt(posterior variance, clamped at 1e-20) times fresh noise, no
noise at t = 0. diffusers' ``DDPMScheduler(clip_sample=True, variance_type="fixed_small")`` is
exactly that step; its alphas-cumprod are replaced by our float64 schedule rounded to float32.
"""

from __future__ import annotations

from dataclasses import dataclass

from diffusers import DDPMScheduler
import torch
from torch import Tensor

from dts_planner.diffusion.calls import StepCallback
from dts_planner.diffusion.denoiser import Cond, Denoiser
from dts_planner.diffusion.schedule import NoiseSchedule, PredictionType
from dts_planner.diffusion.sequential import sample_sequential
from dts_planner.diffusion.settings import checked, SamplerSettings, setting
from dts_planner.diffusion.stats import SampleResult


def make_ddpm_scheduler(schedule: NoiseSchedule, prediction_type: PredictionType,
                        clip_x0: bool = True) -> DDPMScheduler:
    """Return diffusers' DDPM scheduler on ``schedule``'s betas, set to all T steps (T-1..0)."""
    scheduler = DDPMScheduler(**schedule.diffusers_config(), prediction_type=prediction_type,
                              clip_sample=clip_x0, clip_sample_range=1.0,
                              variance_type="fixed_small", timestep_spacing="trailing")
    scheduler.set_timesteps(schedule.num_train_timesteps)
    scheduler.alphas_cumprod = schedule.alphas_cumprod.to(torch.float32)
    return scheduler


@dataclass(frozen=True)
class DDPMSettings(SamplerSettings):
    """DDPM (AVDC-100): ancestral sampling over all T steps."""

    name = "ddpm"
    clip_x0: bool = setting(True, "DDPM: clip the predicted clean sample to [-1, 1]")

    def build(self) -> DDPMSampler:
        """Return ``DDPMSampler(clip_x0)``."""
        return DDPMSampler(self.clip_x0)


class DDPMSampler:
    """AVDC-100: ancestral sampling over all T steps, x0 clamped to [-1, 1] each step."""

    def __init__(self, clip_x0: bool = True) -> None:
        """Clamp the x0 prediction to [-1, 1] each step when ``clip_x0``."""
        self.settings = checked(DDPMSettings(clip_x0))
        self.clip_x0, self.name = clip_x0, self.settings.label

    def sample(self, denoiser: Denoiser, noise: Tensor, cond: Cond,
               generator: torch.Generator | None = None,
               callback: StepCallback | None = None) -> SampleResult:
        """Sample from ``noise`` (B, ...) at t = T-1; step noise is drawn from ``generator``."""
        scheduler = make_ddpm_scheduler(denoiser.schedule, denoiser.prediction_type,
                                        self.clip_x0)

        def step(index: int, t: int, output: Tensor, x: Tensor) -> Tensor:
            return scheduler.step(output, t, x, generator=generator).prev_sample
        return sample_sequential(self.name, denoiser, noise, cond, scheduler.timesteps.tolist(),
                                 step, callback)
