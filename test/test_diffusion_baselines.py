"""DDIM, DDPM and DPM-Solver++ against AVDC's formulas, diffusers and the exact Gaussian ODE."""

import math

from diffusers import DDIMScheduler
import pytest
import torch

from dts_planner.diffusion import (ddim_step, ddim_timesteps, DDIMSampler, DDPMSampler,
                                   DPMSolverSampler, DTSSampler, make_sampler, NoiseSchedule,
                                   NonFiniteOutputError, sampler_names)
from gaussian_denoiser import GaussianDataDenoiser

SHAPE = (2, 3, 6, 6)


def gaussian_problem(prediction_type: str = "v_prediction"):
    """Return an exact denoiser, noise (B, C, H, W) and a per-sample data mean as cond."""
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(SHAPE, generator=generator)
    mean = 0.3 * torch.randn(SHAPE, generator=generator)
    return GaussianDataDenoiser(NoiseSchedule.avdc(), 0.5, prediction_type), noise, mean


def test_ddim_timesteps_follow_avdc():
    assert ddim_timesteps(100, 10) == [99, 89, 79, 69, 59, 49, 39, 29, 19, 9, -1]
    assert ddim_timesteps(100, 100) == list(range(99, -2, -1))
    assert ddim_timesteps(100, 50) == list(range(99, -2, -2))


@pytest.mark.parametrize("num_steps", [10, 20, 50])
def test_ddim_step_equals_diffusers_ddim_scheduler(num_steps):
    # trailing spacing + set_alpha_to_one: diffusers' times are 99, 99 - T/S, ... and its last
    # step (prev_t = -1) uses final_alpha_cumprod = 1, i.e. AVDC's times and x0 at the end.
    denoiser, noise, mean = gaussian_problem()
    schedule = denoiser.schedule
    scheduler = DDIMScheduler(**schedule.diffusers_config(), prediction_type="v_prediction",
                              clip_sample=False, set_alpha_to_one=True,
                              timestep_spacing="trailing")
    scheduler.set_timesteps(num_steps)
    times = ddim_timesteps(100, num_steps)
    assert scheduler.timesteps.tolist() == times[:-1]
    ours = theirs = noise
    for t, t_next in zip(times[:-1], times[1:]):
        t_batch = torch.full((SHAPE[0],), t)
        theirs = scheduler.step(denoiser(theirs, t_batch, mean), t, theirs, eta=0.0).prev_sample
        ours = ddim_step(schedule, denoiser(ours, t_batch, mean), ours, t_batch,
                         torch.full_like(t_batch, t_next), "v_prediction")
        torch.testing.assert_close(ours, theirs, atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("prediction_type", ["v_prediction", "epsilon", "sample"])
def test_ddim100_lands_on_the_exact_ode_solution(prediction_type):
    denoiser, noise, mean = gaussian_problem(prediction_type)
    exact = denoiser.ode_solution(noise, mean)
    error_100 = (DDIMSampler(100).sample(denoiser, noise, mean).sample - exact).abs().max()
    error_50 = (DDIMSampler(50).sample(denoiser, noise, mean).sample - exact).abs().max()
    assert error_100 < 0.04                              # data std 0.5
    assert 1.8 < error_50 / error_100 < 2.2              # first order: halving h halves error


def test_ddpm_step_equals_avdc_posterior_formulas_on_a_fixed_seed():
    # AVDC's GaussianDiffusion buffers, from its float64 cosine schedule.
    t_grid = torch.linspace(0, 100, 101, dtype=torch.float64) / 100
    alphas_cumprod = torch.cos((t_grid + 0.008) / 1.008 * math.pi * 0.5) ** 2
    betas = torch.clip(1 - alphas_cumprod[1:] / alphas_cumprod[:-1], 0, 0.999)
    alphas_cumprod = torch.cumprod(1 - betas, 0)
    alphas_cumprod_prev = torch.nn.functional.pad(alphas_cumprod[:-1], (1, 0), value=1.0)
    posterior_variance = betas * (1 - alphas_cumprod_prev) / (1 - alphas_cumprod)
    log_variance_clipped = torch.log(posterior_variance.clamp(min=1e-20))
    coef1 = betas * alphas_cumprod_prev.sqrt() / (1 - alphas_cumprod)
    coef2 = (1 - alphas_cumprod_prev) * (1 - betas).sqrt() / (1 - alphas_cumprod)

    denoiser, noise, mean = gaussian_problem()
    generator = torch.Generator().manual_seed(7)
    x = noise
    for t in reversed(range(100)):                       # AVDC p_sample_loop
        v = denoiser(x, torch.full((SHAPE[0],), t), mean)
        a = alphas_cumprod[t].float()
        x_start = (a.sqrt() * x - (1 - a).sqrt() * v).clamp(-1, 1)
        model_mean = coef1[t].float() * x_start + coef2[t].float() * x
        step_noise = torch.randn(SHAPE, generator=generator) if t > 0 else 0.0
        x = model_mean + (0.5 * log_variance_clipped[t]).exp().float() * step_noise
    result = DDPMSampler().sample(denoiser, noise, mean, torch.Generator().manual_seed(7))
    torch.testing.assert_close(result.sample, x, atol=1e-4, rtol=1e-4)
    assert (result.stats.depth, result.stats.nfe) == (100, 100 * SHAPE[0])


def test_dpm_solver_converges_to_the_exact_ode_solution():
    denoiser, noise, mean = gaussian_problem()
    exact = denoiser.ode_solution(noise, mean)
    result = DPMSolverSampler(20).sample(denoiser, noise, mean)
    assert (result.sample - exact).abs().max() < 0.03
    assert result.stats.depth == 20 and result.stats.batch_sizes == [SHAPE[0]] * 20


class NaNAfter:
    """Gaussian denoiser that returns NaN from its ``calls``-th call on."""

    def __init__(self, calls: int) -> None:
        """Wrap the Gaussian denoiser; ``calls`` finite calls come first."""
        self.inner, self.calls = gaussian_problem()[0], calls
        self.prediction_type, self.schedule = self.inner.prediction_type, self.inner.schedule

    def __call__(self, x_t, t, cond):
        """Return the Gaussian prediction, or NaN once the finite calls are used up."""
        self.calls -= 1
        output = self.inner(x_t, t, cond)
        return output * float("nan") if self.calls < 0 else output


@pytest.mark.parametrize("sampler, step", [
    (DDIMSampler(10), "ddim10 step 3"), (DDPMSampler(), "ddpm step 3 \\(t=96\\)"),
    (DPMSolverSampler(10), "dpm_solver10 step 3"),
    (DTSSampler(chunk=2), "dts round 0 target step 2"),
    (DTSSampler(chunk=6), "dts round 0 draft step 3")])
def test_nan_from_the_model_raises_naming_the_step(sampler, step):
    _, noise, mean = gaussian_problem()
    with pytest.raises(NonFiniteOutputError, match=step):
        sampler.sample(NaNAfter(3), noise, mean)


def test_factory_and_invalid_baseline_settings():
    assert {"ddpm", "ddim", "dpm_solver", "dts"} <= set(sampler_names())
    assert make_sampler("ddim", num_steps=10).name == "ddim10"
    assert make_sampler("dts", chunk=10).chunk == 10
    with pytest.raises(ValueError, match="unknown sampler"):
        make_sampler("euler")
    with pytest.raises(ValueError, match="num_steps"):
        DDIMSampler(0)
    with pytest.raises(ValueError, match="order"):
        DPMSolverSampler(10, order=4)
    with pytest.raises(ValueError, match="num_steps"):
        DDIMSampler(101).sample(gaussian_problem()[0], torch.zeros(SHAPE), None)
