"""ParaDiGMS on diffusers' parallel schedulers: exact against sequential DDIM / DDPM-100."""

import pytest
import torch

from dts_planner.diffusion import (DDIMSampler, DDPMSampler, make_ddpm_scheduler, make_sampler,
                                   NoiseSchedule)
from dts_planner.peers import make_parallel_scheduler, ParadigmsSampler
from gaussian_denoiser import GaussianDataDenoiser


def gaussian_problem():
    """Exact Gaussian-data denoiser, noise (2, 3, 6, 6) and per-sample means as cond."""
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(2, 3, 6, 6, generator=generator)
    mean = 0.3 * torch.randn(2, 3, 6, 6, generator=generator)
    return GaussianDataDenoiser(NoiseSchedule.avdc(), 0.5), noise, mean


@pytest.mark.parametrize("num_steps", [10, 50])
def test_window_one_reproduces_sequential_ddim(num_steps):
    denoiser, noise, mean = gaussian_problem()
    sequential = DDIMSampler(num_steps).sample(denoiser, noise, mean).sample
    result = ParadigmsSampler(num_steps, window=1, tolerance=0.1).sample(denoiser, noise, mean)
    torch.testing.assert_close(result.sample, sequential, atol=1e-5, rtol=1e-5)
    assert result.stats.depth == result.stats.rounds == num_steps
    assert result.stats.nfe == 2 * num_steps


def test_zero_tolerance_matches_sequential_ddim_on_a_network(tiny_problem):
    model, noise, cond = tiny_problem.model, tiny_problem.noise, tiny_problem.cond
    sequential = DDIMSampler(10).sample(model, noise, cond).sample
    result = ParadigmsSampler(10, window=4, tolerance=0.0).sample(model, noise, cond)
    torch.testing.assert_close(result.sample, sequential, atol=1e-4, rtol=1e-4)
    assert result.stats.nfe == sum(result.stats.batch_sizes)
    assert max(result.stats.batch_sizes) == 4 * 2


def test_loose_tolerance_trades_depth_for_error(tiny_problem):
    model, noise, cond = tiny_problem.model, tiny_problem.noise, tiny_problem.cond
    sequential = DDIMSampler(20).sample(model, noise, cond).sample
    exact = ParadigmsSampler(20, window=8, tolerance=0.0).sample(model, noise, cond)
    loose = ParadigmsSampler(20, window=8, tolerance=1.0).sample(model, noise, cond)
    assert loose.stats.depth < exact.stats.depth
    assert 0 < (loose.sample - sequential).abs().mean() < 0.1


def test_ddpm_variant_reproduces_ddpm100_with_the_same_step_noise():
    denoiser, noise, mean = gaussian_problem()
    sequential = DDPMSampler().sample(denoiser, noise, mean, torch.Generator().manual_seed(5))
    for window, tolerance in ((1, 0.1), (8, 0.0)):
        parallel = ParadigmsSampler(100, window, tolerance, kind="ddpm").sample(
            denoiser, noise, mean, torch.Generator().manual_seed(5))
        torch.testing.assert_close(parallel.sample, sequential.sample, atol=1e-5, rtol=1e-5)
    loose = ParadigmsSampler(100, 8, 0.5, kind="ddpm").sample(
        denoiser, noise, mean, torch.Generator().manual_seed(5))
    assert loose.stats.depth < 100


def test_scheduler_uses_our_betas_and_avdc_times():
    denoiser, _, _ = gaussian_problem()
    scheduler = make_parallel_scheduler(denoiser, "ddim", 10)
    assert scheduler.timesteps.tolist() == [99, 89, 79, 69, 59, 49, 39, 29, 19, 9]
    torch.testing.assert_close(scheduler.alphas_cumprod,
                               denoiser.schedule.alphas_cumprod.float())
    with pytest.raises(ValueError, match="divide"):
        make_parallel_scheduler(denoiser, "ddim", 30)
    with pytest.raises(ValueError, match="all T"):
        make_parallel_scheduler(denoiser, "ddpm", 50)
    with pytest.raises(ValueError, match="window"):
        ParadigmsSampler(window=0)


def test_registered_with_make_sampler():
    sampler = make_sampler("paradigms", num_steps=10, window=2, tolerance=0.5)
    assert isinstance(sampler, ParadigmsSampler) and sampler.window == 2


def ddpm_mean(alphas_cumprod, x_t, v, t):
    """Return AVDC's DDPM posterior mean from a v-prediction at integer t (x0 in [-1, 1])."""
    a, a_prev = alphas_cumprod[t], alphas_cumprod[t - 1]
    x0 = (a.sqrt() * x_t - (1 - a).sqrt() * v).clamp(-1, 1)
    beta = 1 - a / a_prev
    return (beta * a_prev.sqrt() * x0 + (1 - a_prev) * (1 - beta).sqrt() * x_t) / (1 - a)


def test_the_private_diffusers_internals_paradigms_and_ddpm_rely_on_still_behave():
    # peers/paradigms.py calls the private _get_variance and, like diffusion/ddpm.py, overwrites
    # scheduler.alphas_cumprod after construction; a diffusers upgrade that changes either
    # must fail here, loudly, instead of silently changing the samples.
    denoiser, _, _ = gaussian_problem()
    schedule = denoiser.schedule
    parallel = make_parallel_scheduler(denoiser, "ddpm", 100)
    assert callable(getattr(parallel, "_get_variance", None)), (
        "diffusers' DDPMParallelScheduler lost the private _get_variance that peers/paradigms.py "
        "uses for the DDPM step noise: compute the posterior variance from NoiseSchedule instead")
    a = schedule.alphas_cumprod
    posterior_variance = schedule.betas[1:] * (1 - a[:-1]) / (1 - a[1:])
    got = torch.tensor([float(parallel._get_variance(t)) for t in range(1, 100)],
                       dtype=torch.float64)
    torch.testing.assert_close(got, posterior_variance, rtol=1e-5, atol=1e-9, msg=lambda m: (
        "diffusers' _get_variance no longer gives the DDPM posterior variance of the scheduler's "
        f"alphas_cumprod; peers/paradigms.py's DDPM step noise is wrong.\n{m}"))
    other = NoiseSchedule(100, "linear").alphas_cumprod          # a clearly different schedule
    x_t, v = torch.randn(2, 3, generator=torch.Generator().manual_seed(0)), torch.full((2, 3), .3)
    expected = ddpm_mean(other, x_t.double(), v.double(), 50).float()
    sequential = make_ddpm_scheduler(schedule, "v_prediction")
    for scheduler, step in (
            (parallel, lambda s: s.batch_step_no_noise(v, torch.tensor([50, 50]), x_t)),
            (sequential, lambda s: s.step(v, 50, x_t, generator=torch.Generator().manual_seed(1))
             .prev_sample - s._get_variance(50) ** 0.5 * torch.randn(
                 2, 3, generator=torch.Generator().manual_seed(1)))):
        scheduler.alphas_cumprod = other.to(torch.float32)
        torch.testing.assert_close(step(scheduler), expected, rtol=1e-5, atol=1e-5, msg=lambda m: (
            f"{type(scheduler).__name__} no longer reads alphas_cumprod at step time (or its DDPM "
            "step changed): overwriting it, as paradigms.py and ddpm.py do, has no effect\n" + m))
