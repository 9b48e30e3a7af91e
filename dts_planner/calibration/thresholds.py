"""DTS thresholds for a target acceptance rate, from the model's draft-to-target distances.

What DTS does with distances. A draft token is one coarse DDIM step (``draft_stride``
timesteps) and its target the same step refined in fine steps from the same starting token, so
their distance is the LOCAL error of that coarse step, taken from a token that is already j
coarse steps into its chunk. It depends on the step's place in the trajectory (on the 48x48
model: large at the first and last steps, small in the middle) and on j, but hardly on how the
plan got to the chunk's start. One DTS run per plan with threshold 0 (every round rejects its
first token, so round r starts at draft step r from the fine trajectory and drafts to the end)
measures ``table[start][j]``: the distance of the j-th token of a chunk that starts at draft
step ``start``. DTS is then replayed on the table: round r drafts ``min(chunk, steps left)``
tokens from the current step, accepts them up to the first whose distance exceeds
``round_threshold(lambda0, Delta, progression, r)`` and moves on past that token (it is
replaced by its target; when all are accepted the last one is, too, so the plan keeps the
coarse-step error of the accepted tokens before it). The acceptance rate is accepted / drafted
tokens, pooled over the calibration plans (``SamplerStats.acceptance_rate``).

The rule (``fit_thresholds``). Thresholds are in per-element RMS units. Delta is a growth
``Delta = g lambda0`` with g on a small grid (0 = no progression); for each g, lambda0 takes
every value where a token's test flips (a distance divided by the round's growth factor), and
between two flips the replay's outcome is constant (a plateau). Among all plateaus the rule
takes, in this order: the acceptance closest to the target; then the least draft error left in
the plans (the RMS of the kept draft tokens' distances: the rejections fall on the coarse steps
with the largest local error, which is what a rejection is for); then fewer rounds; then the
smaller growth; then lambda0 at the geometric middle of the widest plateau, so the same
thresholds keep their acceptance on plans whose distances differ a little from these. numpy,
no torch (all lambda0 of a growth are replayed at once, ``replay_many``): the planner can refit
for another chunk or target at run time.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
import math
from typing import Sequence

import numpy as np

#: Per plan: ``table[start][j]`` = RMS distance of token j of a chunk starting at draft step
#: ``start`` (row ``start`` has one entry per step left).
Tables = Sequence[Sequence[Sequence[float]]]

#: Growths g = Delta / lambda0 tried by ``fit_thresholds`` (the paper's 1.5 / 11 is 0.136).
GROWTHS = (0.0, 0.05, 0.1, 0.2, 0.35, 0.5, 1.0)


@dataclass(frozen=True)
class Replay:
    """Outcome of DTS replayed on distance tables (counts pooled over the plans)."""

    accepted: int
    drafted: int
    rounds: int
    retained_sq: float            # sum of squared distances of the draft tokens left in plans

    @property
    def acceptance(self) -> float:
        """Accepted / drafted tokens (1.0 when nothing was drafted)."""
        return self.accepted / self.drafted if self.drafted else 1.0


@dataclass(frozen=True)
class ThresholdFit:
    """DTS thresholds for a target acceptance and what the replay predicts for them.

    threshold (lambda0) and increment (Delta) are per-element RMS; acceptance is the predicted
    rate (accepted / drafted) on the calibration plans; retained the RMS per plan of the
    distances of the draft tokens kept in the plan; rounds the mean DTS rounds per plan.
    """

    threshold: float
    increment: float
    chunk: int
    progression: str
    target: float
    acceptance: float
    retained: float
    rounds: float

    def to_dict(self) -> dict[str, float | int | str]:
        """Return the fit as plain data."""
        return asdict(self)


def _growth_factor(progression: str, round_index: int) -> float:
    """Round-r threshold over lambda0 per unit growth: r (linear) or r (r + 1) / 2."""
    return round_index if progression == "linear" else round_index * (round_index + 1) / 2


def step_table(profile: Sequence[float]) -> list[list[float]]:
    """Return the table of a plan whose distances depend on the draft step only."""
    return [list(profile[start:]) for start in range(len(profile))]


def replay(tables: Tables, chunk: int, threshold: float, increment: float,
           progression: str = "linear") -> Replay:
    """Replay DTS's accept/reject decisions on per-plan distance tables (module docstring)."""
    return replay_many(tables, chunk, [threshold], [increment], progression)[0]


def replay_many(tables: Tables, chunk: int, thresholds: Sequence[float],
                increments: Sequence[float], progression: str = "linear") -> list[Replay]:
    """``replay`` for each (threshold, increment) pair, all pairs at once (numpy over pairs).

    The same decisions and the same sums, added in the same order (plan by plan, round by
    round), as one replay per pair: the outcomes are bit-identical.
    """
    from dts_planner.diffusion.dts import round_threshold   # lazy: the module imports torch

    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    lam, inc = np.asarray(thresholds, np.float64), np.asarray(increments, np.float64)
    accepted, drafted, rounds = (np.zeros(len(lam), np.int64) for _ in range(3))
    retained = np.zeros(len(lam))
    for table in tables:
        steps = len(table)
        width = min(chunk, steps)
        # distances[start, j] (inf past the row's end); kept_sq[start, k]: sum of the first k
        # squared distances, summed left to right as a Python loop would
        distances = np.full((steps, width), np.inf)
        kept_sq = np.zeros((steps, width + 1))
        row_length = np.array([len(row) for row in table], np.int64)
        for start, row in enumerate(table):
            head = np.asarray(row[:width], np.float64)
            distances[start, :len(head)] = head
            kept_sq[start, 1:len(head) + 1] = np.cumsum(head * head)
        step = np.zeros(len(lam), np.int64)
        round_index = 0
        while (active := np.flatnonzero(step < steps)).size:
            limit = round_threshold(lam[active], inc[active], progression, round_index)
            start = step[active]
            length = np.minimum(chunk, row_length[start])
            # accepted up to the first token over the limit (inf: past the row)
            count = np.cumprod(distances[start] <= limit[:, None], axis=1).sum(axis=1)
            # the plan goes on from the target of the first rejected token, or of the last
            # token when all are accepted: the accepted tokens before it keep their error
            retained[active] += kept_sq[start, np.minimum(count, length - 1)]
            accepted[active] += count
            drafted[active] += length
            rounds[active] += 1
            step[active] = start + np.minimum(count + 1, length)
            round_index += 1
    return [Replay(int(a), int(d), int(r), float(q))
            for a, d, r, q in zip(accepted, drafted, rounds, retained)]


def fit_thresholds(tables: Tables, chunk: int, target: float, progression: str = "linear",
                   growths: Sequence[float] = GROWTHS) -> ThresholdFit:
    """Return the thresholds whose replayed acceptance is closest to ``target`` (the rule above).

    ``tables``: per plan, ``table[start][j]`` (module docstring; ``step_table`` makes one
    from a per-step profile); ``target`` in [0, 1].
    """
    return rank_thresholds(tables, chunk, target, progression, growths, limit=1)[0]


def rank_thresholds(tables: Tables, chunk: int, target: float, progression: str = "linear",
                    growths: Sequence[float] = GROWTHS, limit: int = 5) -> list[ThresholdFit]:
    """Return the best ``limit`` thresholds with distinct outcomes, best first (the rule above).

    The runners-up are for verification: when the real sampler's acceptance on the calibration
    plans misses the target, the next ones are tried (``python -m dts_planner.calibrate``).
    """
    if not all(len(row) == len(table) - start for table in tables
               for start, row in enumerate(table)):
        raise ValueError("each plan's table needs one row per draft step, row s with one "
                         "distance per step left from s")
    values = [float(d) for table in tables for row in table for d in row]
    if not values or not all(math.isfinite(d) and d >= 0 for d in values):
        raise ValueError("distance tables must be non-empty, finite and >= 0")
    if not 0.0 <= target <= 1.0:
        raise ValueError(f"target acceptance must be in [0, 1], got {target}")
    steps = max(len(table) for table in tables)
    plateaus: list[tuple] = []
    for growth in growths:
        # round r starts at draft step >= r, so a token of a chunk starting at step s is tested
        # against the thresholds of rounds 0..s only
        scales = [1.0 + growth * _growth_factor(progression, r) for r in range(steps)]
        flips = sorted({float(d) / scales[r] for table in tables
                        for start, row in enumerate(table) for d in row if d > 0
                        for r in range(min(start + 1, len(scales)) if growth else 1)})
        # plateau edges: below the smallest flip and above the largest, a factor 2 of margin
        edges = [flips[0] / 2 if flips else 1e-6] + flips + [2 * flips[-1] if flips else 1.0]
        lams = [math.sqrt(low * high) for low, high in zip(edges, edges[1:])]
        keys = [_key(outcome) for outcome in replay_many(
            tables, chunk, lams, [growth * lam for lam in lams], progression)] + [None]
        run_start, run_key = 0, None
        for index, key in enumerate(keys):
            if key != run_key:
                if run_key is not None:
                    plateaus.append(_plateau(run_key, growth, edges[run_start], edges[index],
                                             target))
                run_start, run_key = index, key
    fits: list[ThresholdFit] = []
    seen: set[tuple] = set()
    for _, _, lam, growth, key in sorted(plateaus, key=lambda plateau: plateau[:2]):
        if key not in seen and len(fits) < limit:
            seen.add(key)
            fits.append(_fit(tables, chunk, progression, target, lam, growth, key))
    return fits


def _key(outcome: Replay) -> tuple:
    """Return what identifies a replay's outcome (counts and the kept error)."""
    return (outcome.accepted, outcome.drafted, outcome.rounds, round(outcome.retained_sq, 15))


def _plateau(key: tuple, growth: float, low: float, high: float, target: float) -> tuple:
    """Return the sort key, the middle lambda0, growth and outcome of a plateau (low, high)."""
    accepted, drafted, rounds, retained_sq = key
    acceptance = accepted / drafted if drafted else 1.0
    rank = (round(abs(acceptance - target), 12), retained_sq, rounds, growth)
    return (rank, -math.log(high / low), math.sqrt(low * high), growth, key)


def _fit(tables: Tables, chunk: int, progression: str, target: float, lam: float,
         growth: float, key: tuple) -> ThresholdFit:
    """Return the fit of a plateau, its thresholds rounded to 4 digits when that keeps it."""
    threshold, increment = lam, growth * lam
    short = float(f"{threshold:.4g}"), float(f"{increment:.4g}")   # readable specs
    if _key(replay(tables, chunk, *short, progression)) == key:
        threshold, increment = short
    accepted, drafted, rounds, retained_sq = key
    return ThresholdFit(threshold, increment, chunk, progression, target,
                        accepted / drafted if drafted else 1.0,
                        math.sqrt(retained_sq / len(tables)), rounds / len(tables))
