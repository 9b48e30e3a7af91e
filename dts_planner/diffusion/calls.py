"""The one model-call path of a sampler run: NaN guards, accounting and the per-step callback.

Every sampler calls its denoiser through :class:`ModelCalls` (k-diffusion style ``callback``):
after each sequential model call the callback gets a :class:`StepInfo`; whatever it raises
(e.g. :class:`SamplingCancelled`) propagates out of ``Sampler.sample`` unchanged, so a caller
can watch progress or stop a plan in flight.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import Tensor

from dts_planner.diffusion.denoiser import Cond, Denoiser, predict
from dts_planner.diffusion.stats import SamplerStats


@dataclass(frozen=True)
class StepInfo:
    """One finished sequential model call of a sampler run.

    call_index: 0-based index of the call (call_index + 1 calls done); expected_calls: the
    run's total calls when known in advance, else 0; t: (N,) train timesteps of the call's
    batch; phase: "" for plain samplers, else e.g. "draft", "target", "score", "fine".
    """

    call_index: int
    expected_calls: int
    t: Tensor
    phase: str = ""


StepCallback = Callable[[StepInfo], None]


class SamplingCancelled(Exception):
    """Raise from a step callback to stop a sampler; it propagates out of ``sample()``."""


class ModelCalls:
    """Calls ``denoiser`` for one sampler run: predict, record in ``stats``, then ``callback``."""

    def __init__(self, denoiser: Denoiser, stats: SamplerStats,
                 callback: StepCallback | None = None, expected_calls: int = 0) -> None:
        """Serve one ``sample()`` run; ``expected_calls`` 0 means not known in advance."""
        self.denoiser = denoiser
        self.stats = stats
        self.callback = callback
        self.expected_calls = expected_calls

    def __call__(self, x_t: Tensor, t: Tensor, cond: Cond, step: str, phase: str = "") -> Tensor:
        """Return the checked model output for ``x_t`` (N, ...) at times ``t`` (N,)."""
        output = predict(self.denoiser, x_t, t, cond, step)
        self.record(t, phase)
        return output

    def record(self, t: Tensor, phase: str = "") -> None:
        """Account a model call of batch len(t) made elsewhere (e.g. a scorer), then report it."""
        index = self.stats.depth
        self.stats.record_call(len(t), phase)
        if self.callback is not None:
            self.callback(StepInfo(index, self.expected_calls, t, phase))

    def nested(self, phase: str) -> StepCallback | None:
        """Return a callback for a sub-sampler whose calls are added to these stats afterwards.

        Its StepInfo is re-indexed after the calls made so far and tagged with ``phase``.
        """
        if self.callback is None:
            return None
        callback, base = self.callback, self.stats.depth

        def report(info: StepInfo) -> None:
            callback(StepInfo(base + info.call_index, 0, info.t, phase))
        return report
