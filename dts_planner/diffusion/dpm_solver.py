"""DPM-Solver++ (multistep) through diffusers' DPMSolverMultistepScheduler with our betas."""

from __future__ import annotations

from diffusers import DPMSolverMultistepScheduler
import torch
from torch import Tensor

from dts_planner.diffusion.denoiser import Cond, Denoiser, predict
from dts_planner.diffusion.stats import SampleResult, SamplerStats


class DPMSolverSampler:
    """DPM-Solver++ of ``order`` 1-3 in ``num_steps`` steps; the final step lands on x0."""

    def __init__(self, num_steps: int, order: int = 2) -> None:
        """Sample in ``num_steps`` model calls with a multistep solver of ``order``."""
        if num_steps < 1:
            raise ValueError(f"num_steps must be >= 1, got {num_steps}")
        if order not in (1, 2, 3):
            raise ValueError(f"order must be 1, 2 or 3, got {order}")
        self.num_steps = num_steps
        self.order = order
        self.name = f"dpm_solver{num_steps}"

    def make_scheduler(self, denoiser: Denoiser) -> DPMSolverMultistepScheduler:
        """Return a fresh diffusers scheduler with the denoiser's betas and prediction type."""
        scheduler = DPMSolverMultistepScheduler(
            **denoiser.schedule.diffusers_config(), solver_order=self.order,
            prediction_type=denoiser.prediction_type, algorithm_type="dpmsolver++")
        scheduler.set_timesteps(self.num_steps)
        return scheduler

    def sample(self, denoiser: Denoiser, noise: Tensor, cond: Cond,
               generator: torch.Generator | None = None) -> SampleResult:
        """Integrate from ``noise`` (B, ...) at t = T-1 to x0; ``generator`` is unused."""
        stats = SamplerStats(self.name)
        batch = noise.shape[0]
        x = noise
        with stats.timing_total():
            scheduler = self.make_scheduler(denoiser)
            for step, t in enumerate(scheduler.timesteps):
                t_batch = torch.full((batch,), int(t), dtype=torch.long, device=noise.device)
                output = predict(denoiser, x, t_batch, cond, f"{self.name} step {step}")
                stats.record_call(batch)
                x = scheduler.step(output, t, x).prev_sample
        return SampleResult(x, stats)
