"""AVDC's training objective: v-prediction MSE with min-SNR-gamma weighting."""

from __future__ import annotations

import torch
from torch import Tensor

from dts_planner.diffusion import Denoiser, NoiseSchedule


def min_snr_weight(schedule: NoiseSchedule, t: Tensor, gamma: float = 5.0) -> Tensor:
    """Per-sample loss weight (B,) for v-prediction: min(SNR, gamma) / (SNR + 1)."""
    alpha_bar = schedule.alphas_cumprod.to(t.device)[t]
    snr = alpha_bar / (1.0 - alpha_bar)
    return (snr.clamp(max=gamma) / (snr + 1.0)).float()


def v_prediction_loss(model: Denoiser, x0: Tensor, cond: dict[str, Tensor],
                      generator: torch.Generator | None = None, gamma: float = 5.0) -> Tensor:
    """Min-SNR-weighted MSE between the model's v and the true v at uniform random t.

    x0: clean model-space video (B, F*3, H, W) in [-1, 1]; returns a scalar loss.
    """
    schedule = model.schedule
    t = torch.randint(0, schedule.num_train_timesteps, (x0.shape[0],), generator=generator)
    noise = torch.randn(x0.shape, generator=generator)
    signal, sigma = schedule.signal_noise_scales(t, x0)
    x_t = signal * x0 + sigma * noise
    target = signal * noise - sigma * x0
    per_sample = (model(x_t, t, cond) - target).pow(2).flatten(1).mean(1)
    return (per_sample * min_snr_weight(schedule, t, gamma)).mean()
