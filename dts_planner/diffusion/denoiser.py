"""The Denoiser protocol every sampler sees, conditioning indexing and the NaN/Inf guard."""

from __future__ import annotations

from typing import Mapping, Protocol, Union

import torch
from torch import Tensor

from dts_planner.diffusion.schedule import NoiseSchedule, PredictionType

Cond = Union[Tensor, Mapping[str, Tensor], None]


class Denoiser(Protocol):
    """A diffusion model: raw prediction of ``prediction_type`` under ``schedule``."""

    prediction_type: PredictionType
    schedule: NoiseSchedule

    def __call__(self, x_t: Tensor, t: Tensor, cond: Cond) -> Tensor:
        """Predict from ``x_t`` (B, ...) at integer times ``t`` (B,) in [0, T-1]; shape of x_t."""


class NonFiniteOutputError(FloatingPointError):
    """The model returned NaN or Inf; the message names the sampler step."""


def index_cond(cond: Cond, index: Tensor) -> Cond:
    """Rows ``index`` (N,) of every conditioning tensor (B, ...) -> (N, ...); repeats allowed."""
    if cond is None:
        return None
    if isinstance(cond, Tensor):
        return cond.index_select(0, index.to(cond.device))
    return {key: value.index_select(0, index.to(value.device)) for key, value in cond.items()}


def predict(denoiser: Denoiser, x_t: Tensor, t: Tensor, cond: Cond, step: str) -> Tensor:
    """Call ``denoiser`` and raise NonFiniteOutputError naming ``step`` on NaN/Inf output."""
    with torch.no_grad():
        output = denoiser(x_t, t, cond)
    if not torch.isfinite(output).all():
        raise NonFiniteOutputError(
            f"model output is NaN/Inf at {step} (t={t.tolist()}); refusing to continue sampling")
    return output
