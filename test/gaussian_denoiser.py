"""Test helper: an exact denoiser for Gaussian data; its score is known in closed form.

Data x0 ~ N(mean, std^2) elementwise, with ``mean`` per sample taken from the conditioning (or
zero). At time t, x_t = a x0 + s eps, so E[x0 | x_t] = mean + a std^2 (x_t - a mean) / (a^2 std^2
+ s^2). The probability-flow ODE keeps z = (x_t - a mean) / sqrt(a^2 std^2 + s^2) constant.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dts_planner.diffusion import Cond, NoiseSchedule, PredictionType


class GaussianDataDenoiser:
    """Exact (Bayes-optimal) prediction for elementwise Gaussian data; implements Denoiser."""

    def __init__(self, schedule: NoiseSchedule, std: float = 0.5,
                 prediction_type: PredictionType = "v_prediction") -> None:
        """Use data std ``std``; the per-sample mean is ``cond`` (B, ...), or 0 without cond."""
        self.schedule = schedule
        self.std = std
        self.prediction_type = prediction_type

    def _mean(self, x_t: Tensor, cond: Cond) -> Tensor:
        """Per-sample data mean broadcast like ``x_t``."""
        if cond is None:
            return torch.zeros_like(x_t)
        assert isinstance(cond, Tensor), "GaussianDataDenoiser takes a tensor mean as cond"
        return cond.to(x_t.dtype).expand_as(x_t)

    def __call__(self, x_t: Tensor, t: Tensor, cond: Cond) -> Tensor:
        """Return the exact ``prediction_type`` output for ``x_t`` (B, ...) at ``t`` (B,)."""
        sqrt_a, sqrt_1ma = self.schedule.signal_noise_scales(t, x_t)
        mean = self._mean(x_t, cond)
        gain = sqrt_a * self.std ** 2 / (sqrt_a ** 2 * self.std ** 2 + sqrt_1ma ** 2)
        x0 = mean + gain * (x_t - sqrt_a * mean)
        eps = (x_t - sqrt_a * x0) / sqrt_1ma
        if self.prediction_type == "v_prediction":
            return sqrt_a * eps - sqrt_1ma * x0
        return eps if self.prediction_type == "epsilon" else x0

    def ode_solution(self, noise: Tensor, cond: Cond) -> Tensor:
        """Exact probability-flow ODE end point x0 (B, ...) from ``noise`` at t = T-1."""
        t = torch.full((noise.shape[0],), self.schedule.num_train_timesteps - 1)
        sqrt_a, sqrt_1ma = self.schedule.signal_noise_scales(t, noise.double())
        mean = self._mean(noise.double(), cond)
        z = (noise.double() - sqrt_a * mean) / (sqrt_a ** 2 * self.std ** 2 + sqrt_1ma ** 2).sqrt()
        return (mean + self.std * z).to(noise.dtype)
