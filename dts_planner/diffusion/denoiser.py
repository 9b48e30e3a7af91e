"""The Denoiser protocol every sampler sees, conditioning indexing and the NaN/Inf guards."""

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


class SamplingError(RuntimeError):
    """Base of the errors a sampler raises while sampling (settings, sampler state, model)."""


class NonFiniteOutputError(SamplingError, FloatingPointError):
    """The MODEL returned NaN or Inf from a finite input; the message names the sampler step."""


class SamplerStateError(SamplingError, FloatingPointError):
    """The SAMPLER's own state became NaN/Inf before a model call (a sampler/scheduler fault)."""


class SamplerSettingsError(SamplingError, ValueError):
    """The sampler's settings cannot sample with this denoiser's schedule (see the reasons)."""


def index_cond(cond: Cond, index: Tensor) -> Cond:
    """Rows ``index`` (N,) of every conditioning tensor (B, ...) -> (N, ...); repeats allowed."""
    if cond is None:
        return None
    if isinstance(cond, Tensor):
        return cond.index_select(0, index.to(cond.device))
    return {key: value.index_select(0, index.to(value.device)) for key, value in cond.items()}


def predict(denoiser: Denoiser, x_t: Tensor, t: Tensor, cond: Cond, step: str) -> Tensor:
    """Call ``denoiser`` once; both sides of the call are checked for NaN/Inf.

    A non-finite ``x_t`` raises SamplerStateError (the sampler broke, not the model); a
    non-finite output from a finite input raises NonFiniteOutputError. Both name ``step``.
    """
    if not torch.isfinite(x_t).all():
        raise SamplerStateError(
            f"sampler state is NaN/Inf before the model call at {step} (t={t.tolist()}): a "
            "sampler or scheduler fault, not the model's; refusing to continue sampling")
    with torch.no_grad():
        output = denoiser(x_t, t, cond)
    if not torch.isfinite(output).all():
        raise NonFiniteOutputError(
            f"model output is NaN/Inf at {step} (t={t.tolist()}); refusing to continue sampling")
    return output
