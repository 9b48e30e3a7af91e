"""Sampler accounting: model calls, batch sizes, DTS rounds and wall time per phase."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
import time
from typing import Iterator, Protocol, TYPE_CHECKING

import torch
from torch import Tensor

from dts_planner.diffusion.denoiser import Cond, Denoiser

if TYPE_CHECKING:
    from dts_planner.diffusion.calls import StepCallback


@dataclass
class SamplerStats:
    """What one ``Sampler.sample`` call cost.

    ``batch_sizes[i]`` is the batch of the i-th sequential model call, so ``depth`` =
    len(batch_sizes) and ``nfe`` = sum(batch_sizes) (sample-evaluations, over the whole batch).
    ``rounds`` counts the sampler's own outer iterations: DTS rounds, ParaDiGMS Picard
    iterations, SRDS parareal iterations, blocks of a block speculative plan.
    DTS: per round, ``accepted_per_round[r][b]`` draft tokens accepted and
    ``rejected_per_round[r][b]`` discarded by sample b (both 0 once b is finished),
    ``thresholds[r]`` the threshold, ``distances[r][b]`` the draft-target distance per token.
    Block speculative: ``accepted_per_round[k][b]`` / ``rejected_per_round[k][b]`` 1/0 per
    block k and sample b (draft kept / regenerated), ``router_tau`` the router threshold and
    ``router_scores[k][b]`` the router's per-frame scores (dB, higher is better; empty when the
    block was not drafted); ``parts`` the stats of every sub-sampler run (drafts and targets,
    in order; their calls are also counted here). ``phase_times`` and ``wall_time`` are seconds.
    """

    sampler: str
    nfe: int = 0
    depth: int = 0
    draft_calls: int = 0
    target_calls: int = 0
    batch_sizes: list[int] = field(default_factory=list)
    rounds: int = 0
    accepted_per_round: list[list[int]] = field(default_factory=list)
    rejected_per_round: list[list[int]] = field(default_factory=list)
    thresholds: list[float] = field(default_factory=list)
    distances: list[list[list[float]]] = field(default_factory=list)
    router_tau: float | None = None
    router_scores: list[list[list[float]]] = field(default_factory=list)
    parts: list[SamplerStats] = field(default_factory=list)
    phase_times: dict[str, float] = field(default_factory=dict)
    wall_time: float = 0.0

    @property
    def acceptance_rate(self) -> float | None:
        """Draft tokens accepted / drafted over all rounds and samples; None if none verified.

        DTS: a round that drafts k tokens and accepts the first i counts i of k (the tokens
        after the first rejection are discarded, so they count as not accepted).
        """
        accepted = sum(map(sum, self.accepted_per_round))
        drafted = accepted + sum(map(sum, self.rejected_per_round))
        return accepted / drafted if drafted else None

    def record_call(self, batch_size: int, phase: str = "") -> None:
        """Account one sequential model call of ``batch_size`` samples in ``phase``."""
        self.nfe += batch_size
        self.depth += 1
        self.batch_sizes.append(batch_size)
        if phase == "draft":
            self.draft_calls += 1
        elif phase == "target":
            self.target_calls += 1

    @contextmanager
    def timing_total(self) -> Iterator[None]:
        """Set ``wall_time`` to the wall time of the ``with`` body."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.wall_time = time.perf_counter() - start

    @contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        """Add the wall time of the ``with`` body to ``phase_times[phase]``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.phase_times[phase] = (self.phase_times.get(phase, 0.0)
                                       + time.perf_counter() - start)


@dataclass
class SampleResult:
    """A final sample (B, ...) in model space and its stats."""

    sample: Tensor
    stats: SamplerStats


class Sampler(Protocol):
    """Turns noise into a sample with a Denoiser."""

    name: str

    def sample(self, denoiser: Denoiser, noise: Tensor, cond: Cond,
               generator: torch.Generator | None = None,
               callback: StepCallback | None = None) -> SampleResult:
        """Sample from ``noise`` (B, ...) at t = T-1 under conditioning ``cond``.

        ``callback(StepInfo)`` runs after every sequential model call; what it raises (e.g.
        SamplingCancelled) propagates out unchanged.
        """
