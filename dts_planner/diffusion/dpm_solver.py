"""DPM-Solver++ (multistep) through diffusers' DPMSolverMultistepScheduler with our betas."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from dts_planner.diffusion.calls import StepCallback
from dts_planner.diffusion.ddim import steps_reasons
from dts_planner.diffusion.denoiser import Cond, Denoiser
from dts_planner.diffusion.schedule import NoiseSchedule
from dts_planner.diffusion.sequential import sample_sequential
from dts_planner.diffusion.settings import checked, SamplerSettings, setting
from dts_planner.diffusion.stats import SampleResult

if TYPE_CHECKING:
    from diffusers import DPMSolverMultistepScheduler


@dataclass(frozen=True)
class DPMSolverSettings(SamplerSettings):
    """DPM-Solver++ of ``order`` in ``num_steps`` steps.

    diffusers spaces the steps over [0, T-1] (``linspace``, rounded): at num_steps >= T two
    steps share a timestep and the multistep update divides by zero, so num_steps <= T - 1.
    """

    name = "dpm_solver"
    num_steps: int = setting(10, "DPM-Solver++: solver steps (model calls); at most T-1",
                             bounds=(1, 1000))
    order: int = setting(2, "DPM-Solver++: solver order", bounds=(1, 3))

    @property
    def label(self) -> str:
        """``dpm_solver<num_steps>``."""
        return f"dpm_solver{self.num_steps}"

    def rules(self, schedule: NoiseSchedule | None) -> list[str]:
        """num_steps <= T - 1 (distinct diffusers timesteps)."""
        return steps_reasons("dpm_solver.num_steps", self.num_steps, schedule, margin=1)

    def build(self) -> DPMSolverSampler:
        """Return ``DPMSolverSampler(num_steps, order)``."""
        return DPMSolverSampler(self.num_steps, self.order)


class DPMSolverSampler:
    """DPM-Solver++ of ``order`` 1-3 in ``num_steps`` steps; the final step lands on x0."""

    def __init__(self, num_steps: int, order: int = 2) -> None:
        """Sample in ``num_steps`` model calls with a multistep solver of ``order``."""
        self.settings = checked(DPMSolverSettings(num_steps, order))
        self.num_steps, self.order, self.name = num_steps, order, self.settings.label

    def make_scheduler(self, denoiser: Denoiser) -> DPMSolverMultistepScheduler:
        """Return a fresh diffusers scheduler with the denoiser's betas and prediction type."""
        # Imported on first use: its module loads scipy.stats (0.7 CPU-s), which a process that
        # never samples with DPM-Solver (a planner node on DDIM or DTS) does not need.
        from diffusers import DPMSolverMultistepScheduler
        scheduler = DPMSolverMultistepScheduler(
            **denoiser.schedule.diffusers_config(), solver_order=self.order,
            prediction_type=denoiser.prediction_type, algorithm_type="dpmsolver++")
        scheduler.set_timesteps(self.num_steps)
        return scheduler

    def sample(self, denoiser: Denoiser, noise: Tensor, cond: Cond,
               generator: torch.Generator | None = None,
               callback: StepCallback | None = None) -> SampleResult:
        """Integrate from ``noise`` (B, ...) at t = T-1 to x0; ``generator`` is unused."""
        self.settings.require(denoiser.schedule)
        scheduler = self.make_scheduler(denoiser)

        def step(index: int, t: int, output: Tensor, x: Tensor) -> Tensor:
            return scheduler.step(output, scheduler.timesteps[index], x).prev_sample
        return sample_sequential(self.name, denoiser, noise, cond, scheduler.timesteps.tolist(),
                                 step, callback)
