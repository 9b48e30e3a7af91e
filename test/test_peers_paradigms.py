"""ParaDiGMS on diffusers' parallel schedulers: exact against sequential DDIM / DDPM-100."""

import pytest
import torch

from dts_planner.bench.report import TINY_CONFIG, torch_threads
from dts_planner.models import random_video_model
from dts_planner.diffusion import DDIMSampler, DDPMSampler, make_sampler, NoiseSchedule
from dts_planner.diffusion.gaussian import GaussianDataDenoiser
from dts_planner.peers import make_parallel_scheduler, ParadigmsSampler


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Run this module's model calls single-threaded (fast on a loaded 2-core machine)."""
    with torch_threads(1):
        yield


def gaussian_problem():
    """Exact Gaussian-data denoiser, noise (2, 3, 6, 6) and per-sample means as cond."""
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(2, 3, 6, 6, generator=generator)
    mean = 0.3 * torch.randn(2, 3, 6, 6, generator=generator)
    return GaussianDataDenoiser(NoiseSchedule.avdc(), 0.5), noise, mean


def video_problem():
    """Tiny random-weight video U-Net (nonlinear), noise and conditioning for 2 samples."""
    model = random_video_model(TINY_CONFIG)
    generator = torch.Generator().manual_seed(1)
    noise = torch.randn(model.noise_shape(2), generator=generator)
    cond = model.make_cond(torch.rand(2, 3, 8, 8, generator=generator),
                           torch.randn(2, 3, TINY_CONFIG.text_dim, generator=generator))
    return model, noise, cond


@pytest.mark.parametrize("num_steps", [10, 50])
def test_window_one_reproduces_sequential_ddim(num_steps):
    denoiser, noise, mean = gaussian_problem()
    sequential = DDIMSampler(num_steps).sample(denoiser, noise, mean).sample
    result = ParadigmsSampler(num_steps, window=1, tolerance=0.1).sample(denoiser, noise, mean)
    torch.testing.assert_close(result.sample, sequential, atol=1e-5, rtol=1e-5)
    assert result.stats.depth == result.stats.rounds == num_steps
    assert result.stats.nfe == 2 * num_steps


def test_zero_tolerance_matches_sequential_ddim_on_a_network():
    model, noise, cond = video_problem()
    sequential = DDIMSampler(10).sample(model, noise, cond).sample
    result = ParadigmsSampler(10, window=4, tolerance=0.0).sample(model, noise, cond)
    torch.testing.assert_close(result.sample, sequential, atol=1e-4, rtol=1e-4)
    assert result.stats.nfe == sum(result.stats.batch_sizes)
    assert max(result.stats.batch_sizes) == 4 * 2


def test_loose_tolerance_trades_depth_for_error():
    model, noise, cond = video_problem()
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
