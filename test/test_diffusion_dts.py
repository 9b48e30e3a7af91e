"""DTS: exact limits (always reject / always accept), cost arithmetic, batches, guards."""

import math

import pytest
import torch

from dts_planner.diffusion import (ddim_step, DDIMSampler, DTSSampler, NoiseSchedule,
                                   SamplerSettingsError, token_distance)
from gaussian_denoiser import GaussianDataDenoiser

SHAPE = (1, 3, 6, 6)
ALWAYS_ACCEPT = 1e9                     # the largest threshold the settings allow


def gaussian_problem(batch: int = 1, prediction_type: str = "v_prediction"):
    """Return an exact denoiser, noise (B, C, H, W) and per-sample data means as cond."""
    generator = torch.Generator().manual_seed(1)
    # the problem is linear in (noise, mean): scaling sample b scales its draft-target
    # distances, so the samples of a batch take different accept/reject paths
    scale = torch.linspace(0.5, 2.0, batch).view(-1, 1, 1, 1) if batch > 1 else 1.0
    noise = torch.randn((batch, *SHAPE[1:]), generator=generator) * scale
    mean = 0.3 * torch.randn((batch, *SHAPE[1:]), generator=generator) * scale
    return GaussianDataDenoiser(NoiseSchedule.avdc(), 0.5, prediction_type), noise, mean


def ddim_path(denoiser, x, t, cond, stride, intervals):
    """``intervals`` DDIM steps of ``stride`` from integer time ``t`` (batch 1 reference)."""
    for _ in range(intervals):
        t_now = torch.tensor([t])
        x = ddim_step(denoiser.schedule, denoiser(x, t_now, cond), x, t_now, t_now - stride,
                      denoiser.prediction_type)
        t -= stride
    return x


def always_accept_closed_form(denoiser, noise, cond, draft_stride, target_stride, chunk):
    """Draft a chunk, refine every draft token with the target, continue from the last."""
    x, t = noise, denoiser.schedule.num_train_timesteps - 1
    while t >= 0:
        length = min(chunk, (t + 1) // draft_stride)
        drafts = [x]
        for i in range(length - 1):
            drafts.append(ddim_path(denoiser, drafts[-1], t - i * draft_stride, cond,
                                    draft_stride, 1))
        x = ddim_path(denoiser, drafts[-1], t - (length - 1) * draft_stride, cond,
                      target_stride, draft_stride // target_stride)
        t -= length * draft_stride
    return x


@pytest.mark.parametrize("prediction_type", ["v_prediction", "epsilon", "sample"])
@pytest.mark.parametrize("chunk", [1, 3, 6, 10])
def test_always_reject_is_sequential_ddim_with_the_target_stride(chunk, prediction_type):
    denoiser, noise, mean = gaussian_problem(prediction_type=prediction_type)
    result = DTSSampler(chunk=chunk, threshold=0.0, increment=0.0).sample(denoiser, noise, mean)
    reference = DDIMSampler(50).sample(denoiser, noise, mean).sample
    torch.testing.assert_close(result.sample, reference, atol=1e-5, rtol=1e-5)
    # every round rejects its first token and still advances one draft interval (no t bug)
    assert result.stats.rounds == 10
    assert all(row == [0] for row in result.stats.accepted_per_round)


@pytest.mark.parametrize("chunk", [1, 4, 6, 10])
@pytest.mark.parametrize("strides", [(10, 2), (20, 5), (5, 5)])
def test_always_accept_equals_its_closed_form(chunk, strides):
    denoiser, noise, mean = gaussian_problem()
    sampler = DTSSampler(*strides, chunk=chunk, threshold=ALWAYS_ACCEPT)
    result = sampler.sample(denoiser, noise, mean)
    expected = always_accept_closed_form(denoiser, noise, mean, *strides, chunk)
    torch.testing.assert_close(result.sample, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("chunk", [4, 6, 10])
@pytest.mark.parametrize("reuse", [True, False])
def test_all_accept_cost_arithmetic(chunk, reuse):
    denoiser, noise, mean = gaussian_problem(batch=2)
    sampler = DTSSampler(chunk=chunk, threshold=ALWAYS_ACCEPT, reuse_draft_outputs=reuse)
    result = sampler.sample(denoiser, noise, mean)
    lengths = [min(chunk, 10 - start) for start in range(0, 10, chunk)]
    fine_calls = 5 - int(reuse)                        # s_d / s_t, minus the reused first one
    stats = result.stats
    assert stats.depth == sum(k + fine_calls for k in lengths)
    assert stats.draft_calls == sum(lengths) and stats.target_calls == fine_calls * len(lengths)
    assert stats.nfe == 2 * sum(k + fine_calls * k for k in lengths)   # batch of 2
    assert stats.batch_sizes == sum(([2] * k + [2 * k] * fine_calls for k in lengths), [])
    assert stats.batch_sizes == sampler.all_accept_batch_sizes(100, batch=2)
    assert stats.rounds == len(lengths)
    assert [sum(row) for row in stats.accepted_per_round] == [2 * k for k in lengths]
    assert stats.rejected_per_round == [[0, 0]] * len(lengths)
    assert set(stats.phase_times) == {"draft", "target", "verify"} and stats.wall_time > 0


def test_reusing_draft_outputs_changes_nothing_but_the_cost():
    denoiser, noise, mean = gaussian_problem(batch=3)
    settings = dict(threshold=0.05, increment=0.01, distance="rms")
    reused = DTSSampler(**settings).sample(denoiser, noise, mean)
    fresh = DTSSampler(**settings, reuse_draft_outputs=False).sample(denoiser, noise, mean)
    torch.testing.assert_close(reused.sample, fresh.sample, atol=1e-6, rtol=1e-6)
    assert reused.stats.accepted_per_round == fresh.stats.accepted_per_round
    assert reused.stats.depth == fresh.stats.depth - fresh.stats.rounds


def test_gaussian_data_dts_lands_near_the_exact_ode_solution():
    # Stated tolerance: max error 0.1 (data std 0.5). For reference, DDIM-50 (the always-reject
    # limit) is off by 0.05 here and DDIM-10 (the draft alone) by 0.24.
    denoiser, noise, mean = gaussian_problem()
    exact = denoiser.ode_solution(noise, mean)
    result = DTSSampler(chunk=6, threshold=0.005, increment=0.001, distance="rms").sample(
        denoiser, noise, mean)
    assert (result.sample - exact).abs().max() < 0.1
    assert result.stats.depth < 50


def test_a_batch_gives_each_sample_what_it_gets_alone():
    denoiser, noise, mean = gaussian_problem(batch=4)
    sampler = DTSSampler(chunk=6, threshold=0.006, increment=0.002, distance="rms")
    together = sampler.sample(denoiser, noise, mean)
    patterns = set()
    for b in range(4):
        alone = sampler.sample(denoiser, noise[b:b + 1], mean[b:b + 1])
        torch.testing.assert_close(together.sample[b:b + 1], alone.sample, atol=1e-6, rtol=0)
        rows = together.stats.accepted_per_round[:alone.stats.rounds]
        assert [row[b] for row in rows] == [row[0] for row in alone.stats.accepted_per_round]
        patterns.add(tuple(row[0] for row in alone.stats.accepted_per_round))
    assert len(patterns) > 1                           # the samples really took different paths
    assert max(together.stats.batch_sizes) <= 4 * 6


def test_thresholds_progress_linearly_or_cumulatively():
    linear = DTSSampler(threshold=12.0, increment=1.5)
    cumulative = DTSSampler(threshold=12.0, increment=1.5, progression="cumulative")
    assert [linear.threshold_at(r) for r in range(4)] == [12.0, 13.5, 15.0, 16.5]
    assert [cumulative.threshold_at(r) for r in range(5)] == [12.0, 13.5, 16.5, 21.0, 27.0]
    denoiser, noise, mean = gaussian_problem()
    stats = DTSSampler(threshold=0.0, increment=1.0).sample(denoiser, noise, mean).stats
    assert stats.thresholds == [float(r) for r in range(stats.rounds)]


def test_distances_are_absolute_l2_or_per_element_rms():
    a, b = torch.zeros(2, 3, 4, 4), torch.full((2, 3, 4, 4), 0.5)
    assert token_distance(a, b, "l2").tolist() == [pytest.approx(0.5 * math.sqrt(48))] * 2
    assert token_distance(a, b, "rms").tolist() == [pytest.approx(0.5)] * 2


@pytest.mark.parametrize("settings, parameter", [
    (dict(target_stride=3), "target_stride"), (dict(draft_stride=0), "draft_stride"),
    (dict(chunk=0), "chunk"), (dict(threshold=-0.5), "threshold"),
    (dict(threshold=float("nan")), "threshold"), (dict(increment=-0.5), "increment"),
    (dict(distance="cosine"), "distance"), (dict(progression="square"), "progression"),
    (dict(max_rounds=-1), "max_rounds")])
def test_invalid_settings_name_the_parameter(settings, parameter):
    with pytest.raises(ValueError, match=parameter):
        DTSSampler(**settings)


def test_strides_that_do_not_tile_t_and_the_round_limit_fail_clearly():
    denoiser, noise, mean = gaussian_problem()
    with pytest.raises(SamplerSettingsError, match="draft_stride=3 must divide"):
        DTSSampler(draft_stride=3, target_stride=1).sample(denoiser, noise, mean)
    with pytest.raises(SamplerSettingsError, match="max_rounds=2 must be 0"):
        DTSSampler(threshold=0.0, increment=0.0, max_rounds=2).sample(denoiser, noise, mean)
    result = DTSSampler(threshold=0.0, increment=0.0, max_rounds=10).sample(denoiser, noise, mean)
    assert result.stats.rounds == 10                   # the smallest limit allowed suffices


def test_an_auto_threshold_builds_with_the_papers() -> None:
    """Build an auto threshold (-1) without a calibration as lambda0 = 11 in l2."""
    from dts_planner.diffusion import DTSSettings
    auto = DTSSettings(increment=2.0, distance="rms")
    assert auto.auto_threshold and not auto.check()
    sampler = auto.build()
    assert (sampler.threshold, sampler.distance, sampler.increment) == (11.0, "l2", 2.0)
    manual = DTSSettings(threshold=0.05, distance="rms")
    assert manual.with_paper_thresholds() is manual
    assert DTSSampler(threshold=-1.0).threshold == 11.0
