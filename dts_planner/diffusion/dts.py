"""Draft-and-Target Sampling (DTS) with token chunking and progressive acceptance.

From the current token x at time tau (per sample), each round:

1. draft: up to ``chunk`` DDIM steps of ``draft_stride`` -> d_0 = x, d_1 ... d_k;
2. target: every d_i (i < k) refined from its own time to the time of d_{i+1} by
   ``draft_stride / target_stride`` DDIM steps of ``target_stride``, all tokens (and all batch
   samples) in ONE model call per fine step -> g_1 ... g_k;
3. verify in order: the first i with distance(d_{i+1}, g_{i+1}) > threshold_r is rejected;
   continue from g_{i+1} at the time of d_{i+1} (the authors' code forgets to advance the time
   when i = 0); if all k are accepted, continue from g_k. At t = -1 the token is the sample.

The model output of the draft at (d_i, t_i) is exactly the target's first fine-step input, so
with ``reuse_draft_outputs`` the first target call is skipped (same result, one call fewer).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import torch
from torch import Tensor

from dts_planner.diffusion.calls import ModelCalls, StepCallback
from dts_planner.diffusion.ddim import ddim_step
from dts_planner.diffusion.denoiser import Cond, Denoiser, index_cond, SamplingError
from dts_planner.diffusion.schedule import NoiseSchedule
from dts_planner.diffusion.settings import checked, divisors, SamplerSettings, setting
from dts_planner.diffusion.stats import SampleResult, SamplerStats

Distance = Literal["l2", "rms"]
Progression = Literal["linear", "cumulative"]


def token_distance(a: Tensor, b: Tensor, distance: Distance) -> Tensor:
    """Distance per token between (N, ...) tensors -> (N,): absolute L2 or per-element RMS."""
    diff = (a - b).flatten(1).double()
    l2 = diff.norm(dim=1)
    return l2 if distance == "l2" else l2 / diff.shape[1] ** 0.5


def round_threshold(threshold: float, increment: float, progression: str,
                    round_index: int) -> float:
    """Return the acceptance threshold of round ``round_index`` (0-based): DTS's progression.

    "linear" (the paper): threshold + increment r; "cumulative" (the authors' code):
    threshold + increment r (r + 1) / 2. Plain floats, no torch (calibration simulates it).
    """
    if progression == "linear":
        return threshold + increment * round_index
    return threshold + increment * round_index * (round_index + 1) / 2


AUTO_THRESHOLD = -1.0
"""``dts.threshold`` meaning "auto": a model's calibrated thresholds where a calibration file
applies (the planner node resolves them, `dts_planner.calibration`), else the paper's."""
PAPER_THRESHOLD = 11.0
"""The paper's lambda0, absolute L2 over 21x128x128 values (iTHOR and Meta-World settings)."""


@dataclass(frozen=True)
class DTSSettings(SamplerSettings):
    """DTS settings (paper defaults: iTHOR k = 6, lambda0 = 11, Delta = 1.5 in absolute L2).

    T must be a multiple of draft_stride, draft_stride a multiple of target_stride; a round
    advances at least one draft step, so a round limit below T / draft_stride could stop a plan
    that rejects every draft: max_rounds is 0 (no limit) or at least T / draft_stride.
    threshold -1 (AUTO_THRESHOLD, the default) builds with the paper's lambda0 = 11 in l2
    unless a calibration replaced it first (``Calibration.dts_settings``).
    """

    name = "dts"
    draft_stride: int = setting(10, "DTS: train timesteps per draft step; divides T",
                                bounds=(1, 100))
    target_stride: int = setting(2, "DTS: train timesteps per target step; divides "
                                 "dts.draft_stride", bounds=(1, 100))
    chunk: int = setting(6, "DTS: draft tokens verified per round", bounds=(1, 100))
    threshold: float = setting(AUTO_THRESHOLD, "DTS: acceptance distance threshold of the first "
                               "round, in the units of dts.distance; 0 = always reject "
                               "(sequential fine DDIM); -1 = auto: the model's calibrated "
                               "thresholds (RMS, for a target acceptance rate) where a "
                               "calibration file applies, else the paper's 11.0 in l2",
                               bounds=(AUTO_THRESHOLD, 1e9))
    increment: float = setting(1.5, "DTS: threshold increment per round (units of "
                               "dts.distance)", bounds=(0.0, 1e3))
    distance: str = setting("l2", "DTS: draft-target distance: l2 = absolute L2 norm over a "
                            "whole sample in model space, rms = per-element RMS",
                            choices=("l2", "rms"))
    progression: str = setting("linear", "DTS: threshold progression per round r: linear = "
                               "threshold + r increment, cumulative = threshold + increment "
                               "r (r + 1) / 2", choices=("linear", "cumulative"))
    max_rounds: int = setting(0, "DTS: round limit; 0 = no limit, else at least "
                              "T / dts.draft_stride", bounds=(0, 1000))
    reuse_draft_outputs: bool = setting(True, "DTS: reuse the draft's model outputs in the "
                                        "target (same result, one call fewer per round)")

    @property
    def auto_threshold(self) -> bool:
        """Whether the thresholds are left to a calibration (threshold -1)."""
        return self.threshold == AUTO_THRESHOLD

    def with_paper_thresholds(self) -> DTSSettings:
        """Return these settings with an auto threshold replaced by the paper's (11.0, l2)."""
        if not self.auto_threshold:
            return self
        return replace(self, threshold=PAPER_THRESHOLD, distance="l2")

    def rules(self, schedule: NoiseSchedule | None) -> list[str]:
        """Auto or non-negative threshold, stride divisibility; with a schedule, T and rounds."""
        reasons = []
        if self.threshold < 0 and not self.auto_threshold:
            reasons.append(f"dts.threshold={self.threshold} must be >= 0, or -1 (auto)")
        if self.draft_stride % self.target_stride:
            reasons.append(f"dts.target_stride={self.target_stride} must divide "
                           f"dts.draft_stride={self.draft_stride}: allowed "
                           f"{', '.join(map(str, divisors(self.draft_stride)))}")
        if schedule is None:
            return reasons
        num_train = schedule.num_train_timesteps
        if num_train % self.draft_stride:
            reasons.append(f"dts.draft_stride={self.draft_stride} must divide the model's "
                           f"T={num_train} training timesteps: allowed "
                           f"{', '.join(map(str, divisors(num_train)))}")
        elif 0 < self.max_rounds < num_train // self.draft_stride:
            reasons.append(f"dts.max_rounds={self.max_rounds} must be 0 (no limit) or at least "
                           f"T / dts.draft_stride = {num_train // self.draft_stride} (a plan "
                           "that rejects every draft needs that many rounds)")
        return reasons

    def build(self) -> DTSSampler:
        """Return the DTSSampler with these settings (an auto threshold: the paper's)."""
        return DTSSampler(**self.with_paper_thresholds().to_dict())


class DTSSampler:
    """Draft-and-Target Sampling; paper settings are the defaults (iTHOR: k = 6, lambda0 = 11).

    ``threshold`` (lambda0) and ``increment`` (Delta) are in the units of ``distance``: "l2" is
    the absolute L2 norm over one whole sample in model space (the paper; depends on resolution
    and frame count), "rms" the per-element RMS (carries across resolutions). Round r accepts
    below lambda0 + r * Delta ("linear", the paper) or lambda0 + Delta * r (r + 1) / 2
    ("cumulative", the authors' code). Settings rules: :class:`DTSSettings`.
    """

    def __init__(self, draft_stride: int = 10, target_stride: int = 2, chunk: int = 6,
                 threshold: float = PAPER_THRESHOLD, increment: float = 1.5,
                 distance: Distance = "l2", progression: Progression = "linear",
                 max_rounds: int | None = 0, reuse_draft_outputs: bool = True) -> None:
        """Check the settings; ``max_rounds`` 0 (or None) means no limit; threshold -1: paper."""
        self.settings = checked(DTSSettings(
            draft_stride, target_stride, chunk, threshold, increment, distance, progression,
            max_rounds or 0, reuse_draft_outputs)).with_paper_thresholds()
        self.draft_stride = draft_stride
        self.target_stride = target_stride
        self.chunk = chunk
        self.threshold = self.settings.threshold
        self.increment = increment
        self.distance: Distance = self.settings.distance
        self.progression: Progression = progression
        self.max_rounds = max_rounds or 0
        self.reuse_draft_outputs = reuse_draft_outputs
        self.name = self.settings.label

    def threshold_at(self, round_index: int) -> float:
        """Return the acceptance threshold of round ``round_index`` (0-based)."""
        return round_threshold(self.threshold, self.increment, self.progression, round_index)

    def all_accept_batch_sizes(self, num_train_timesteps: int, batch: int = 1) -> list[int]:
        """Batch size of every sequential model call when every draft token is accepted.

        Chunks of k_c = min(chunk, intervals left) cost k_c draft calls of ``batch`` and
        draft_stride / target_stride target calls of k_c * batch (one fewer with reuse).
        """
        fine_calls = self.draft_stride // self.target_stride - int(self.reuse_draft_outputs)
        sizes, intervals = [], num_train_timesteps // self.draft_stride
        while intervals > 0:
            length = min(self.chunk, intervals)
            sizes += [batch] * length + [length * batch] * fine_calls
            intervals -= length
        return sizes

    def sample(self, denoiser: Denoiser, noise: Tensor, cond: Cond,
               generator: torch.Generator | None = None,
               callback: StepCallback | None = None) -> SampleResult:
        """Sample from ``noise`` (B, ...) at t = T-1; each sample keeps its own accept state.

        ``generator`` is unused (DTS is deterministic). Raises SamplerSettingsError if the
        settings do not fit the schedule (see :class:`DTSSettings`), NonFiniteOutputError on a
        NaN/Inf model output; ``callback`` sees every model call (phases "draft", "target").
        """
        self.settings.require(denoiser.schedule)
        num_train_timesteps = denoiser.schedule.num_train_timesteps
        max_rounds = self.max_rounds or num_train_timesteps // self.draft_stride
        stats = SamplerStats(self.name)
        calls = ModelCalls(denoiser, stats, callback)
        batch = noise.shape[0]
        x = noise.clone()
        times = torch.full((batch,), num_train_timesteps - 1, dtype=torch.long,
                           device=noise.device)
        with stats.timing_total():
            while bool((times >= 0).any()):
                if stats.rounds == max_rounds:
                    raise SamplingError(f"DTS reached max_rounds={max_rounds} with samples "
                                        f"still at t={times.tolist()}")
                self._round(calls, x, times, cond)
        return SampleResult(x, stats)

    def _round(self, calls: ModelCalls, x: Tensor, times: Tensor, cond: Cond) -> None:
        """Run one draft/target/verify round, advancing ``x`` and ``times`` (B,) in place."""
        stats = calls.stats
        schedule, prediction_type = calls.denoiser.schedule, calls.denoiser.prediction_type
        s_d, s_t = self.draft_stride, self.target_stride
        active = (times >= 0).nonzero().squeeze(1)                       # (A,)
        start = times[active]                                            # (A,)
        lengths = torch.clamp((start + 1) // s_d, max=self.chunk)        # (A,) k per sample
        k_max = int(lengths.max())
        offsets = torch.arange(k_max + 1, device=x.device) * s_d
        token_times = start[:, None] - offsets                           # (A, k_max + 1)
        tokens = x[active].unsqueeze(1).repeat(1, k_max + 1, *([1] * (x.dim() - 1)))
        draft_outputs = torch.zeros_like(tokens[:, :k_max])
        round_index = stats.rounds

        with stats.timed("draft"):
            for j in range(k_max):
                rows = (lengths > j).nonzero().squeeze(1)
                t_j = token_times[rows, j]
                output = calls(tokens[rows, j], t_j, index_cond(cond, active[rows]),
                               f"dts round {round_index} draft step {j}", "draft")
                draft_outputs[rows, j] = output
                tokens[rows, j + 1] = ddim_step(schedule, output, tokens[rows, j], t_j,
                                                t_j - s_d, prediction_type)

        with stats.timed("target"):
            valid = torch.arange(k_max, device=x.device)[None] < lengths[:, None]  # (A, k_max)
            owner = active[:, None].expand(-1, k_max)[valid]             # (N,) batch row
            state, t_cur = tokens[:, :k_max][valid], token_times[:, :k_max][valid]
            token_cond = index_cond(cond, owner)
            for m in range(s_d // s_t):
                if m == 0 and self.reuse_draft_outputs:
                    output = draft_outputs[valid]
                else:
                    output = calls(state, t_cur, token_cond,
                                   f"dts round {round_index} target step {m}", "target")
                state = ddim_step(schedule, output, state, t_cur, t_cur - s_t, prediction_type)
                t_cur = t_cur - s_t
            targets = torch.zeros_like(tokens[:, 1:])
            targets[valid] = state                                       # g_1 ... g_k

        with stats.timed("verify"):
            threshold = self.threshold_at(round_index)
            distances = token_distance(tokens[:, 1:][valid], state, self.distance)
            # positions past a sample's chunk (and one sentinel column) count as rejected
            rejected = torch.ones((len(active), k_max + 1), dtype=torch.bool, device=x.device)
            rejected[:, :k_max][valid] = distances > threshold
            accepted = rejected.int().argmax(1)           # first rejection = tokens accepted
            advance = torch.clamp(accepted + 1, max=lengths)              # tokens consumed
            x[active] = targets[torch.arange(len(active)), advance - 1]
            times[active] = start - advance * s_d
            self._record_round(stats, threshold, active, lengths, accepted,
                               distances.split(lengths.tolist()), len(times))

    @staticmethod
    def _record_round(stats: SamplerStats, threshold: float, active: Tensor, lengths: Tensor,
                      accepted: Tensor, distances: tuple[Tensor, ...], batch: int) -> None:
        """Append one round's threshold, per-sample accept/reject counts and distances."""
        accepted_row, rejected_row = [0] * batch, [0] * batch
        distance_row: list[list[float]] = [[] for _ in range(batch)]
        for row, sample in enumerate(active.tolist()):
            accepted_row[sample] = int(accepted[row])
            rejected_row[sample] = int(lengths[row] - accepted[row])
            distance_row[sample] = distances[row].tolist()
        stats.rounds += 1
        stats.thresholds.append(threshold)
        stats.accepted_per_round.append(accepted_row)
        stats.rejected_per_round.append(rejected_row)
        stats.distances.append(distance_row)
