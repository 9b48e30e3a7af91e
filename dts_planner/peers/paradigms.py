"""ParaDiGMS (Shih et al. 2023): Picard iterations over a sliding window of denoising steps.

Port of diffusers' ``StableDiffusionParadigmsPipeline`` loop onto our Denoiser protocol, stepping
with diffusers' ``DDIMParallelScheduler`` / ``DDPMParallelScheduler.batch_step_no_noise``
configured with the denoiser's betas. One iteration = ONE batched model call on the ``window``
states buf[b:e] at their own times; the states are replaced by buf[b] + cumsum(step - state)
(+ the pre-sampled DDPM noise), and the window slides past every state whose squared change,
per element and relative to the scheduler's variance at the next time, is <= tolerance^2.

Sequential baseline it converges to: ``kind="ddim"`` -> our ``DDIMSampler(num_steps)`` (AVDC
times ``linspace(-1, T-1, S+1)``, eta 0, no clamp, last step returns x0; diffusers' trailing
spacing and ``prev_t = t - T/S`` with alpha-bar 1 below t = 0 coincide with it when S divides T,
which is required); ``kind="ddpm"`` -> our ``DDPMSampler()`` (AVDC-100 ancestral, x0 clamped),
the step noise drawn from the generator in the same order (t = T-1 .. 1), so with
``window=1`` or ``tolerance=0`` both reproduce the sequential sample to float rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from diffusers import DDIMParallelScheduler, DDPMParallelScheduler
import torch
from torch import Tensor

from dts_planner.diffusion import (Cond, ddim_timesteps, Denoiser, index_cond, ModelCalls,
                                   NoiseSchedule, SampleResult, SamplerSettings, SamplerStats,
                                   setting, StepCallback)
from dts_planner.diffusion.settings import checked, divisors

ParallelKind = Literal["ddim", "ddpm"]
ParallelScheduler = DDIMParallelScheduler | DDPMParallelScheduler


def make_parallel_scheduler(denoiser: Denoiser, kind: ParallelKind,
                            num_steps: int) -> ParallelScheduler:
    """Diffusers parallel scheduler with the denoiser's betas, set to ``num_steps`` steps.

    Its alphas-cumprod are replaced by our float64 schedule rounded to float32, and its
    timesteps are checked to equal the AVDC times of the matching sequential sampler.
    """
    schedule = denoiser.schedule
    num_train = schedule.num_train_timesteps
    ParadigmsSettings(num_steps=num_steps, kind=kind).require(schedule)
    if kind == "ddim":
        scheduler = DDIMParallelScheduler(
            **schedule.diffusers_config(), prediction_type=denoiser.prediction_type,
            clip_sample=False, set_alpha_to_one=True, timestep_spacing="trailing")
        expected = ddim_timesteps(num_train, num_steps)[:-1]
    else:
        scheduler = DDPMParallelScheduler(
            **schedule.diffusers_config(), prediction_type=denoiser.prediction_type,
            clip_sample=True, clip_sample_range=1.0, variance_type="fixed_small",
            timestep_spacing="trailing")
        expected = list(reversed(range(num_train)))
    scheduler.set_timesteps(num_steps)
    scheduler.alphas_cumprod = schedule.alphas_cumprod.to(torch.float32)
    if scheduler.timesteps.tolist() != expected:
        raise ValueError(f"diffusers timesteps {scheduler.timesteps.tolist()} differ from the "
                         f"sequential sampler's {expected}")
    return scheduler


@dataclass(frozen=True)
class ParadigmsSettings(SamplerSettings):
    """ParaDiGMS: num_steps divides T (uniform steps); kind ddpm runs all T steps."""

    name = "paradigms"
    num_steps: int = setting(50, "ParaDiGMS: steps of the sequential sampler it solves; "
                             "divides T (all T for paradigms.kind=ddpm)", bounds=(1, 100))
    window: int = setting(8, "ParaDiGMS: Picard window (steps per batched model call)",
                          bounds=(1, 100))
    tolerance: float = setting(0.1, "ParaDiGMS: per-element change, relative to sigma_t, that "
                               "counts as converged; 0 = exact", bounds=(0.0, 1e3))
    kind: str = setting("ddim", "ParaDiGMS: sequential sampler it solves",
                        choices=("ddim", "ddpm"))

    @property
    def label(self) -> str:
        """``paradigms_<kind><num_steps>``."""
        return f"paradigms_{self.kind}{self.num_steps}"

    def rules(self, schedule: NoiseSchedule | None) -> list[str]:
        """With a schedule: num_steps divides T; kind ddpm needs num_steps = T."""
        if schedule is None:
            return []
        num_train = schedule.num_train_timesteps
        if self.kind == "ddpm" and self.num_steps != num_train:
            return [f"paradigms.num_steps={self.num_steps} must be T={num_train} with "
                    "paradigms.kind=ddpm (it runs all T steps of DDPM)"]
        if num_train % self.num_steps:
            return [f"paradigms.num_steps={self.num_steps} must divide the model's T={num_train}"
                    f" training timesteps (uniform steps): allowed "
                    f"{', '.join(map(str, divisors(num_train)))}"]
        return []

    def build(self) -> ParadigmsSampler:
        """Return the ParadigmsSampler with these settings."""
        return ParadigmsSampler(**self.to_dict())


class ParadigmsSampler:
    """ParaDiGMS over ``num_steps`` DDIM (or all-T DDPM) steps, Picard window ``window``.

    tolerance: accept a state while ||delta||^2 / (D * sigma^2_next) <= tolerance^2 for every
    sample in the batch (the batch shares one window, as in the diffusers pipeline); 0 makes
    it exact. Stats: rounds = Picard iterations = depth, ``accepted_per_round[r]`` = [steps the
    window advanced], batch sizes window*B.
    """

    def __init__(self, num_steps: int = 100, window: int = 8, tolerance: float = 0.1,
                 kind: ParallelKind = "ddim"):
        """Check and store the settings (rules: :class:`ParadigmsSettings`)."""
        self.settings = checked(ParadigmsSettings(num_steps, window, tolerance, kind))
        self.num_steps = num_steps
        self.window = window
        self.tolerance = tolerance
        self.kind = kind
        self.name = self.settings.label

    def _step_noise(self, scheduler: ParallelScheduler, noise: Tensor,
                    generator: torch.Generator | None) -> Tensor:
        """Pre-sample step noise (N+1, B, ...): sigma_t * eps for DDPM (0 at t = 0), 0 for DDIM."""
        step_noise = noise.new_zeros((len(scheduler.timesteps) + 1, *noise.shape))
        if self.kind == "ddpm":
            for j, t in enumerate(scheduler.timesteps.tolist()[:-1]):
                eps = torch.randn(noise.shape, generator=generator, dtype=noise.dtype,
                                  device=noise.device)
                step_noise[j] = float(scheduler._get_variance(t)) ** 0.5 * eps
        return step_noise

    def sample(self, denoiser: Denoiser, noise: Tensor, cond: Cond,
               generator: torch.Generator | None = None,
               callback: StepCallback | None = None) -> SampleResult:
        """Sample from ``noise`` (B, ...) at t = T-1; DDPM step noise comes from ``generator``."""
        stats = SamplerStats(self.name)
        with stats.timing_total():
            scheduler = make_parallel_scheduler(denoiser, self.kind, self.num_steps)
            result = self._picard(ModelCalls(denoiser, stats, callback), scheduler, noise, cond,
                                  generator)
        return SampleResult(result, stats)

    def _picard(self, calls: ModelCalls, scheduler: ParallelScheduler, noise: Tensor,
                cond: Cond, generator: torch.Generator | None) -> Tensor:
        """Run the sliding-window Picard loop; return buf[N] (B, ...)."""
        stats = calls.stats
        timesteps = scheduler.timesteps.to(noise.device)
        num_steps, batch = len(timesteps), noise.shape[0]
        window = min(self.window, num_steps)
        buf = noise.unsqueeze(0).repeat(num_steps + 1, *([1] * noise.dim()))
        step_noise = self._step_noise(scheduler, noise, generator)
        variances = [float(scheduler._get_variance(t)) for t in timesteps.tolist()]
        inverse_variance = 1.0 / torch.tensor(variances + [0.0], dtype=torch.float64)
        inverse_variance = (inverse_variance / noise[0].numel()).to(noise.device)
        tolerance_sq = self.tolerance ** 2
        begin, end = 0, window
        while begin < num_steps:
            length = end - begin
            states = buf[begin:end].flatten(0, 1)                              # (L*B, ...)
            t = timesteps[begin:end].repeat_interleave(batch)                  # (L*B,)
            rows = torch.arange(batch, device=noise.device).repeat(length)
            output = calls(states, t, index_cond(cond, rows),
                           f"{self.name} window [{begin}, {end})")
            stepped = scheduler.batch_step_no_noise(output, t, states).to(noise.dtype)
            delta = (stepped - states).unflatten(0, (length, batch))
            new = buf[begin] + torch.cumsum(delta + step_noise[begin:end], dim=0)
            error = (new - buf[begin + 1:end + 1]).flatten(2).pow(2).sum(dim=2)   # (L, B)
            error_ratio = error * inverse_variance[begin + 1:end + 1, None]
            exceeded = (error_ratio > tolerance_sq).any(dim=1).tolist() + [True]
            advance = min(exceeded.index(True) + 1, window)
            buf[begin + 1:end + 1] = new
            new_begin = begin + advance
            new_end = min(new_begin + window, num_steps)
            buf[end:new_end + 1] = buf[end]
            stats.accepted_per_round.append([advance])
            stats.rounds += 1
            begin, end = new_begin, new_end
        return buf[num_steps]
