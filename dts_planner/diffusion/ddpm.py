"""Ancestral DDPM over every training step (AVDC-100): posterior math and the sampler."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from dts_planner.diffusion.denoiser import Cond, Denoiser, predict
from dts_planner.diffusion.schedule import NoiseSchedule
from dts_planner.diffusion.stats import SampleResult, SamplerStats

POSTERIOR_LOG_VARIANCE_FLOOR = 1e-20


def ddpm_posterior(schedule: NoiseSchedule, x0: Tensor, x_t: Tensor,
                   t: int) -> tuple[Tensor, float]:
    """Mean (B, ...) and clamped log-variance of q(x_{t-1} | x_t, x0) at integer ``t``.

    mean = b_t sqrt(a_{t-1}) / (1 - a_t) * x0 + (1 - a_{t-1}) sqrt(1 - b_t) / (1 - a_t) * x_t,
    var = b_t (1 - a_{t-1}) / (1 - a_t), log-variance clamped below at log(1e-20) (AVDC).
    """
    betas = schedule.betas
    alpha_bar = schedule.alphas_cumprod[t]
    alpha_bar_prev = schedule.alphas_cumprod[t - 1] if t > 0 else torch.ones((), dtype=betas.dtype)
    coef_x0 = float(betas[t] * alpha_bar_prev.sqrt() / (1.0 - alpha_bar))
    coef_xt = float((1.0 - alpha_bar_prev) * (1.0 - betas[t]).sqrt() / (1.0 - alpha_bar))
    variance = betas[t] * (1.0 - alpha_bar_prev) / (1.0 - alpha_bar)
    log_variance = float(variance.clamp(min=POSTERIOR_LOG_VARIANCE_FLOOR).log())
    return coef_x0 * x0 + coef_xt * x_t, log_variance


def ddpm_step(schedule: NoiseSchedule, x0: Tensor, x_t: Tensor, t: int,
              noise: Tensor | None) -> Tensor:
    """Draw x_{t-1} = mean + exp(log_var / 2) * noise; the mean at t = 0. Shapes (B, ...)."""
    mean, log_variance = ddpm_posterior(schedule, x0, x_t, t)
    if t == 0 or noise is None:
        return mean
    return mean + math.exp(0.5 * log_variance) * noise


class DDPMSampler:
    """AVDC-100: ancestral sampling over all T steps, x0 clamped to [-1, 1] each step."""

    def __init__(self, clip_x0: bool = True) -> None:
        """Clamp the x0 prediction to [-1, 1] each step when ``clip_x0``."""
        self.clip_x0 = clip_x0
        self.name = "ddpm"

    def sample(self, denoiser: Denoiser, noise: Tensor, cond: Cond,
               generator: torch.Generator | None = None) -> SampleResult:
        """Sample from ``noise`` (B, ...) at t = T-1; step noise is drawn from ``generator``."""
        schedule = denoiser.schedule
        stats = SamplerStats(self.name)
        batch = noise.shape[0]
        x = noise
        with stats.timing_total():
            for t in reversed(range(schedule.num_train_timesteps)):
                t_batch = torch.full((batch,), t, dtype=torch.long, device=noise.device)
                output = predict(denoiser, x, t_batch, cond, f"ddpm step t={t}")
                stats.record_call(batch)
                x0, _ = schedule.predict_x0_eps(output, x, t_batch, denoiser.prediction_type)
                if self.clip_x0:
                    x0 = x0.clamp(-1.0, 1.0)
                step_noise = (torch.randn(x.shape, generator=generator, dtype=x.dtype,
                                          device=x.device) if t > 0 else None)
                x = ddpm_step(schedule, x0, x, t, step_noise)
        return SampleResult(x, stats)
