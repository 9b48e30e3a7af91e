"""The per-step callback of every registered sampler: sees every model call, can stop a plan."""

from __future__ import annotations

import pytest
import torch

import dts_planner.peers  # noqa: F401  (registers the peer samplers)
from dts_planner.diffusion import (DDIMSampler, DTSSampler, SamplingCancelled, sampler_names,
                                   settings_class)


class CountingDenoiser:
    """Wraps a denoiser and counts its calls."""

    def __init__(self, inner):
        """Count the calls of ``inner``."""
        self.inner, self.calls = inner, 0
        self.prediction_type, self.schedule = inner.prediction_type, inner.schedule

    def __call__(self, x_t, t, cond):
        """Forward to the wrapped denoiser."""
        self.calls += 1
        return self.inner(x_t, t, cond)


def run(name, problem, callback):
    """Sample ``name`` with default settings on one sample of the tiny problem."""
    denoiser = CountingDenoiser(problem.model)
    cond = {key: value[:1] for key, value in problem.cond.items()}
    try:
        result = settings_class(name)().build().sample(
            denoiser, problem.noise[:1], cond, torch.Generator().manual_seed(0), callback)
    except SamplingCancelled:
        result = None
    return denoiser.calls, result


@pytest.mark.parametrize("name", sampler_names())
def test_callback_sees_every_model_call_and_a_raise_stops_after_exactly_k(name, tiny_problem):
    infos = []
    calls, result = run(name, tiny_problem, infos.append)
    assert calls == len(infos) == result.stats.depth > 1
    assert [info.call_index for info in infos] == list(range(calls))
    assert all(info.expected_calls in (0, calls) for info in infos)
    assert all(isinstance(info.t, torch.Tensor) and info.t.dim() == 1 for info in infos)
    for k in sorted({1, calls // 2}):
        def stop_after_k(info, k=k):
            if info.call_index == k - 1:
                raise SamplingCancelled(f"after {k}")
        assert run(name, tiny_problem, stop_after_k) == (k, None), k


def test_sequential_samplers_know_their_call_count_and_phases_are_reported(tiny_problem):
    infos = []
    DDIMSampler(4).sample(tiny_problem.model, tiny_problem.noise, tiny_problem.cond,
                          callback=infos.append)
    assert [(i.call_index, i.expected_calls, i.t.tolist()) for i in infos] == [
        (0, 4, [99, 99]), (1, 4, [74, 74]), (2, 4, [49, 49]), (3, 4, [24, 24])]
    phases = []
    DTSSampler(threshold=0.0).sample(tiny_problem.model, tiny_problem.noise, tiny_problem.cond,
                                     callback=lambda info: phases.append(info.phase))
    assert set(phases) == {"draft", "target"}
    phases.clear()
    settings_class("block_speculative")(tau=-1e3, draft_steps=2, target="ddim").build().sample(
        tiny_problem.model, tiny_problem.noise, tiny_problem.cond,
        callback=lambda info: phases.append(info.phase))
    assert phases == ["target"] * 10 + ["draft"] * 2 + ["score"]


def test_other_exceptions_from_the_callback_propagate_unchanged(tiny_problem):
    error = KeyError("mine")

    def fail(info):
        raise error

    with pytest.raises(KeyError) as raised:
        DDIMSampler(3).sample(tiny_problem.model, tiny_problem.noise, tiny_problem.cond,
                              callback=fail)
    assert raised.value is error
