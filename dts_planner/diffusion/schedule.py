"""Noise schedule: diffusers beta schedules, x0/eps recovery for every prediction type."""

from __future__ import annotations

from typing import Literal, Sequence

from diffusers import DDPMScheduler
import torch
from torch import Tensor

PredictionType = Literal["v_prediction", "epsilon", "sample"]
PREDICTION_TYPES: tuple[str, ...] = ("v_prediction", "epsilon", "sample")


class NoiseSchedule:
    """Discrete variance-preserving schedule with ``num_train_timesteps`` steps.

    Betas come from diffusers (``DDPMScheduler``'s beta schedules, so a model trained with
    diffusers plugs in unchanged); the cumulative products are kept in float64.
    Time ``t = -1`` denotes the clean sample (alpha-bar 1), the end point of DDIM.
    """

    def __init__(self, num_train_timesteps: int = 100,
                 beta_schedule: str = "squaredcos_cap_v2",
                 trained_betas: Sequence[float] | Tensor | None = None) -> None:
        """Build the schedule; ``trained_betas`` overrides ``beta_schedule`` when given."""
        if trained_betas is not None:
            trained_betas = torch.as_tensor(trained_betas, dtype=torch.float64).tolist()
        scheduler = DDPMScheduler(num_train_timesteps=num_train_timesteps,
                                  beta_schedule=beta_schedule, trained_betas=trained_betas)
        self.num_train_timesteps = num_train_timesteps
        self.betas: Tensor = scheduler.betas.to(torch.float64)              # (T,)
        self.alphas_cumprod: Tensor = torch.cumprod(1.0 - self.betas, 0)    # (T,)
        # index t + 1: entry 0 is t = -1 (clean sample)
        self._alphas_cumprod_from_minus_one = torch.cat(
            [torch.ones(1, dtype=torch.float64), self.alphas_cumprod])

    @classmethod
    def avdc(cls) -> NoiseSchedule:
        """Return AVDC's schedule: T = 100, cosine with s = 0.008, beta clipped at 0.999."""
        return cls(100, "squaredcos_cap_v2")

    def diffusers_config(self) -> dict:
        """Return the diffusers scheduler kwargs that reproduce these betas exactly."""
        return {"num_train_timesteps": self.num_train_timesteps,
                "trained_betas": self.betas.tolist()}

    def signal_noise_scales(self, t: Tensor, like: Tensor) -> tuple[Tensor, Tensor]:
        """(sqrt(alpha-bar), sqrt(1 - alpha-bar)) at integer times ``t`` (B,) in [-1, T-1].

        Computed in float64, returned in ``like``'s dtype and device, shaped (B, 1, ...).
        """
        alpha_bar = self._alphas_cumprod_from_minus_one.to(like.device)[t.long() + 1]
        shape = (-1, *([1] * (like.dim() - 1)))
        return (alpha_bar.sqrt().to(like.dtype).view(shape),
                (1.0 - alpha_bar).sqrt().to(like.dtype).view(shape))

    def predict_x0_eps(self, model_output: Tensor, x_t: Tensor, t: Tensor,
                       prediction_type: PredictionType) -> tuple[Tensor, Tensor]:
        """Recover (x0, eps) from a raw prediction at times ``t`` (B,) in [0, T-1].

        Shapes: ``model_output`` and ``x_t`` are (B, ...); both results are (B, ...).
        """
        sqrt_a, sqrt_1ma = self.signal_noise_scales(t, x_t)
        if prediction_type == "v_prediction":
            return sqrt_a * x_t - sqrt_1ma * model_output, sqrt_1ma * x_t + sqrt_a * model_output
        if prediction_type == "epsilon":
            return (x_t - sqrt_1ma * model_output) / sqrt_a, model_output
        if prediction_type == "sample":
            return model_output, (x_t - sqrt_a * model_output) / sqrt_1ma
        raise ValueError(f"prediction_type must be one of {PREDICTION_TYPES}, "
                         f"got {prediction_type!r}")
