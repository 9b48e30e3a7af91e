"""Sampler core: noise schedule, Denoiser protocol, DDPM / DDIM / DPM-Solver++ and DTS.

ROS-free; the contract is in docs/architecture.md.
"""

from dts_planner.diffusion.ddim import ddim_step, ddim_timesteps, DDIMSampler
from dts_planner.diffusion.ddpm import ddpm_posterior, ddpm_step, DDPMSampler
from dts_planner.diffusion.denoiser import (Cond, Denoiser, index_cond, NonFiniteOutputError,
                                            predict)
from dts_planner.diffusion.dpm_solver import DPMSolverSampler
from dts_planner.diffusion.dts import DTSSampler, token_distance
from dts_planner.diffusion.factory import make_sampler, register_sampler, sampler_names
from dts_planner.diffusion.schedule import NoiseSchedule, PredictionType
from dts_planner.diffusion.stats import Sampler, SampleResult, SamplerStats

__all__ = [
    "Cond", "DDIMSampler", "DDPMSampler", "DPMSolverSampler", "DTSSampler", "Denoiser",
    "NoiseSchedule", "NonFiniteOutputError", "PredictionType", "SampleResult", "Sampler",
    "SamplerStats", "ddim_step", "ddim_timesteps", "ddpm_posterior", "ddpm_step", "index_cond",
    "make_sampler", "predict", "register_sampler", "sampler_names", "token_distance",
]
