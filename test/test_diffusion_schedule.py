"""NoiseSchedule: equals AVDC's cosine formula; x0/eps recovery for every prediction type."""

import math

from diffusers import DDPMScheduler
import pytest
import torch

from dts_planner.diffusion import NoiseSchedule


def avdc_cosine_alphas_cumprod(timesteps: int = 100, s: float = 0.008) -> torch.Tensor:
    """Return AVDC's float64 cosine (alpha-bar, betas): ``cosine_beta_schedule``, cumprod."""
    t = torch.linspace(0, timesteps, timesteps + 1, dtype=torch.float64) / timesteps
    alphas_cumprod = torch.cos((t + s) / (1 + s) * math.pi * 0.5) ** 2
    alphas_cumprod = alphas_cumprod / alphas_cumprod[0]
    betas = torch.clip(1 - alphas_cumprod[1:] / alphas_cumprod[:-1], 0, 0.999)
    return torch.cumprod(1 - betas, 0), betas


def test_avdc_schedule_equals_avdc_cosine_formula():
    schedule = NoiseSchedule.avdc()
    alphas_cumprod, betas = avdc_cosine_alphas_cumprod()
    assert schedule.num_train_timesteps == 100
    assert betas[-1] == pytest.approx(0.999)          # the clip is active at t = T-1
    torch.testing.assert_close(schedule.betas, betas, rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(schedule.alphas_cumprod, alphas_cumprod, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("beta_schedule", ["linear", "scaled_linear", "squaredcos_cap_v2"])
def test_schedule_uses_diffusers_betas_and_round_trips_trained_betas(beta_schedule):
    schedule = NoiseSchedule(1000, beta_schedule)
    reference = DDPMScheduler(num_train_timesteps=1000, beta_schedule=beta_schedule)
    torch.testing.assert_close(schedule.betas, reference.betas.double())
    copy = NoiseSchedule(**schedule.diffusers_config())
    torch.testing.assert_close(copy.alphas_cumprod, schedule.alphas_cumprod)


@pytest.mark.parametrize("prediction_type", ["v_prediction", "epsilon", "sample"])
def test_predict_x0_eps_recovers_both(prediction_type):
    schedule = NoiseSchedule.avdc()
    generator = torch.Generator().manual_seed(0)
    x0 = torch.rand(4, 3, 5, 5, generator=generator) * 2 - 1
    eps = torch.randn(4, 3, 5, 5, generator=generator)
    t = torch.tensor([0, 17, 50, 98])
    a = schedule.alphas_cumprod[t].float().view(-1, 1, 1, 1)
    x_t = a.sqrt() * x0 + (1 - a).sqrt() * eps
    output = {"v_prediction": a.sqrt() * eps - (1 - a).sqrt() * x0, "epsilon": eps,
              "sample": x0}[prediction_type]
    x0_hat, eps_hat = schedule.predict_x0_eps(output, x_t, t, prediction_type)
    torch.testing.assert_close(x0_hat, x0, atol=2e-4, rtol=0)
    torch.testing.assert_close(eps_hat, eps, atol=2e-4, rtol=0)


def test_time_minus_one_is_the_clean_sample_and_bad_type_fails():
    schedule = NoiseSchedule.avdc()
    like = torch.zeros(2, 3)
    signal, noise = schedule.signal_noise_scales(torch.tensor([-1, 99]), like)
    assert signal[0].item() == 1.0 and noise[0].item() == 0.0
    assert signal.shape == (2, 1) and noise[1].item() == pytest.approx(1.0, abs=1e-3)
    with pytest.raises(ValueError, match="prediction_type"):
        schedule.predict_x0_eps(like, like, torch.tensor([1, 2]), "score")
