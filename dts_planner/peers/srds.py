"""SRDS (Selvam et al. 2024): parareal over a DDIM trajectory, fine solves batched.

The fine solution is our sequential ``DDIMSampler(num_steps)`` (AVDC times, eta 0, last step
returns x0). Its N steps are cut into ``num_segments`` (default round(sqrt(N))) segments. The
coarse solver G_k is ONE DDIM step across segment k, the fine solver F_k the segment's own
DDIM steps. Iteration p runs F_k on every not-yet-exact segment in one batched call per fine
step, then a sequential predictor-corrector sweep U_{k+1} = F_k(U_k^{p-1}) + G_k(U_k^p) -
G_k(U_k^{p-1}). After p iterations the first p boundaries are exact, so at most num_segments
iterations reproduce the sequential solution; segments whose input is already exact are not
recomputed. Early stop when the final sample's mean absolute change between iterations,
in 0-255 pixel units (model space [-1, 1] scaled by 127.5), is below ``tolerance`` for every
sample (the unofficial reference implementation's rule, default 0.1).
"""

from __future__ import annotations

from dataclasses import dataclass
import math

import torch
from torch import Tensor

from dts_planner.diffusion import (Cond, ddim_step, ddim_timesteps, Denoiser, index_cond,
                                   ModelCalls, NoiseSchedule, SampleResult, SamplerSettings,
                                   SamplerStats, setting, StepCallback)
from dts_planner.diffusion.ddim import steps_reasons

PIXEL_SCALE = 127.5


def default_segments(num_steps: int) -> int:
    """round(sqrt(num_steps)), at least 1: the segment count of SRDS's paper."""
    return max(1, round(math.sqrt(num_steps)))


@dataclass(frozen=True)
class SRDSSettings(SamplerSettings):
    """SRDS: num_steps <= T; num_segments (0 = round(sqrt(num_steps))) <= num_steps."""

    name = "srds"
    num_steps: int = setting(50, "SRDS: steps of the fine DDIM solution; at most T",
                             bounds=(1, 100))
    num_segments: int = setting(0, "SRDS: coarse segments; 0 = round(sqrt(srds.num_steps)); at "
                                "most srds.num_steps", bounds=(0, 100))
    max_iterations: int = setting(0, "SRDS: parareal iterations; 0 = until converged (at most "
                                  "the segment count, which is exact)", bounds=(0, 100))
    tolerance: float = setting(0.1, "SRDS: early stop when the final sample changes by less "
                               "(mean absolute, 0-255 image units); 0 = never early",
                               bounds=(0.0, 1e3))

    @property
    def label(self) -> str:
        """``srds<num_steps>``."""
        return f"srds{self.num_steps}"

    def rules(self, schedule: NoiseSchedule | None) -> list[str]:
        """num_segments <= num_steps; with a schedule, num_steps <= T."""
        reasons = []
        if self.num_segments > self.num_steps:
            reasons.append(f"srds.num_segments={self.num_segments} must be at most "
                           f"srds.num_steps={self.num_steps} (0 = automatic)")
        return reasons + steps_reasons("srds.num_steps", self.num_steps, schedule)

    def build(self) -> SRDSSampler:
        """Return the SRDSSampler (0 = automatic segments, iterations until converged)."""
        return SRDSSampler(self.num_steps, self.num_segments, self.max_iterations or None,
                           self.tolerance)


class SRDSSampler:
    """Parareal DDIM-``num_steps`` with ``num_segments`` segments and early stopping.

    num_segments: 0 or None -> round(sqrt(num_steps)); max_iterations: parareal iterations at
    most (None -> num_segments, always exact; 0 -> the coarse solution only); tolerance:
    early-stop threshold (0-255 units; 0 never stops early).
    Stats: rounds = parareal iterations, phases "coarse" and "fine".
    """

    def __init__(self, num_steps: int = 100, num_segments: int | None = None,
                 max_iterations: int | None = None, tolerance: float = 0.1):
        """Check and store the settings (rules: :class:`SRDSSettings`)."""
        SRDSSettings(num_steps, num_segments or 0, max_iterations or 0, tolerance).require()
        segments = num_segments or default_segments(num_steps)
        self.num_steps = num_steps
        self.num_segments = segments
        self.max_iterations = min(segments if max_iterations is None else max_iterations,
                                  segments)
        self.tolerance = tolerance
        self.name = f"srds{num_steps}"

    def sample(self, denoiser: Denoiser, noise: Tensor, cond: Cond,
               generator: torch.Generator | None = None,
               callback: StepCallback | None = None) -> SampleResult:
        """Integrate from ``noise`` (B, ...) at t = T-1 to x0; ``generator`` is unused."""
        num_train = denoiser.schedule.num_train_timesteps
        SRDSSettings(self.num_steps, self.num_segments).require(denoiser.schedule)
        stats = SamplerStats(self.name)
        calls = ModelCalls(denoiser, stats, callback)
        times = ddim_timesteps(num_train, self.num_steps)
        bounds = [round(k * self.num_steps / self.num_segments)
                  for k in range(self.num_segments + 1)]
        segment_times = [(times[a], times[b]) for a, b in zip(bounds[:-1], bounds[1:])]
        with stats.timing_total():
            with stats.timed("coarse"):
                states = [noise]
                coarse = []
                for k in range(self.num_segments):
                    coarse.append(self._coarse(calls, states[k], cond, segment_times[k],
                                               f"coarse init segment {k}"))
                    states.append(coarse[k])
            for iteration in range(1, self.max_iterations + 1):
                first = iteration - 1
                with stats.timed("fine"):
                    fine = self._fine(calls, states[first:], cond, times,
                                      bounds[first:])
                previous = states[-1]
                with stats.timed("coarse"):
                    for k in range(first, self.num_segments):
                        if k < iteration:
                            states[k + 1] = fine[k - first]
                            continue
                        update = self._coarse(calls, states[k], cond, segment_times[k],
                                              f"iteration {iteration} segment {k}")
                        states[k + 1] = fine[k - first] + update - coarse[k]
                        coarse[k] = update
                stats.rounds = iteration
                change = (states[-1] - previous).abs().flatten(1).mean(dim=1) * PIXEL_SCALE
                if bool((change < self.tolerance).all()):
                    break
        return SampleResult(states[-1], stats)

    @staticmethod
    def _coarse(calls: ModelCalls, x: Tensor, cond: Cond, span: tuple[int, int],
                step: str) -> Tensor:
        """One DDIM step of x (B, ...) across a whole segment ``span`` = (t_start, t_end)."""
        t = torch.full((x.shape[0],), span[0], dtype=torch.long, device=x.device)
        output = calls(x, t, cond, f"srds {step}", "coarse")
        return ddim_step(calls.denoiser.schedule, output, x, t, torch.full_like(t, span[1]),
                         calls.denoiser.prediction_type)

    @staticmethod
    def _fine(calls: ModelCalls, starts: list[Tensor], cond: Cond, times: list[int],
              bounds: list[int]) -> list[Tensor]:
        """Fine DDIM solves of segments from ``starts`` (each (B, ...)), batched per step.

        Segment i runs times[bounds[i]] -> ... -> times[bounds[i+1]]; ``starts`` may hold one
        more entry than segments (the final state), which is ignored.
        """
        segments = len(bounds) - 1
        batch = starts[0].shape[0]
        x = torch.cat(starts[:segments])                                    # (S*B, ...)
        lengths = torch.tensor([b - a for a, b in zip(bounds[:-1], bounds[1:])])
        rows = torch.arange(segments * batch)
        for step in range(int(lengths.max())):
            active = rows[(lengths > step).repeat_interleave(batch)]
            index = [bounds[i // batch] + step for i in active.tolist()]
            t = torch.tensor([times[i] for i in index], device=x.device)
            t_next = torch.tensor([times[i + 1] for i in index], device=x.device)
            x_active = x[active.to(x.device)]
            output = calls(x_active, t, index_cond(cond, active % batch),
                           f"srds fine step {step}", "fine")
            x[active.to(x.device)] = ddim_step(calls.denoiser.schedule, output, x_active, t,
                                               t_next, calls.denoiser.prediction_type)
        return list(x.split(batch))
