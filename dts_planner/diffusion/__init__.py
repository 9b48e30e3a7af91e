"""Sampler core: noise schedule, Denoiser protocol, DDPM / DDIM / DPM-Solver++ and DTS.

Samplers are built from self-validating settings through one registry (``parse_spec``,
``settings_from_flat``, ``make_sampler``); ``import dts_planner.peers`` adds the peers.
ROS-free; the contract is in docs/architecture.md.
"""

from dts_planner.diffusion.calls import ModelCalls, SamplingCancelled, StepCallback, StepInfo
from dts_planner.diffusion.ddim import ddim_step, ddim_timesteps, DDIMSampler, DDIMSettings
from dts_planner.diffusion.ddpm import DDPMSampler, DDPMSettings, make_ddpm_scheduler
from dts_planner.diffusion.denoiser import (
    Cond, Denoiser, index_cond, NonFiniteOutputError, predict, SamplerSettingsError,
    SamplerStateError, SamplingError)
from dts_planner.diffusion.dpm_solver import DPMSolverSampler, DPMSolverSettings
from dts_planner.diffusion.dts import DTSSampler, DTSSettings, round_threshold, token_distance
from dts_planner.diffusion.registry import (
    make_sampler, parse_spec, register_sampler, sampler_names, settings_class,
    settings_from_flat)
from dts_planner.diffusion.schedule import NoiseSchedule, PredictionType
from dts_planner.diffusion.settings import SamplerSettings, setting, SettingInfo
from dts_planner.diffusion.stats import Sampler, SampleResult, SamplerStats

__all__ = [
    "Cond", "DDIMSampler", "DDIMSettings", "DDPMSampler", "DDPMSettings", "DPMSolverSampler",
    "DPMSolverSettings", "DTSSampler", "DTSSettings", "Denoiser", "ModelCalls", "NoiseSchedule",
    "NonFiniteOutputError", "PredictionType", "SampleResult", "Sampler", "SamplerSettings",
    "SamplerSettingsError", "SamplerStateError", "SamplerStats", "SamplingCancelled",
    "SamplingError", "SettingInfo", "StepCallback", "StepInfo", "ddim_step", "ddim_timesteps",
    "index_cond", "make_ddpm_scheduler", "make_sampler", "parse_spec", "predict",
    "register_sampler", "round_threshold", "sampler_names", "setting", "settings_class",
    "settings_from_flat", "token_distance",
]
