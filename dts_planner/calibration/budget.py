"""Latency budget: a cost model of sampler configurations and the chooser that meets a budget.

Plain Python (no torch, no ROS): the planner node keeps one :class:`BudgetChooser`, asks it for
a configuration before each plan and feeds it the plan's measured time afterwards.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
import math
from typing import Iterable, Mapping, Sequence


class CostModel:
    """Predicted sampling time from the calibrated forward cost per batch size.

    A configuration's time = ``overhead`` x the sum over its sequential model calls of the
    forward cost at that call's batch size. Batch sizes between measured ones are interpolated
    linearly; beyond the largest, extrapolated along the last two (never below the largest);
    below the smallest, the smallest's cost.
    """

    def __init__(self, forward_cost_s: Mapping[int, float], overhead: float = 1.0) -> None:
        """``forward_cost_s``: seconds of one model call per batch size (at least one size)."""
        if not forward_cost_s:
            raise ValueError("the cost model needs the forward cost of at least one batch size")
        if not all(size >= 1 and cost > 0 and math.isfinite(cost)
                   for size, cost in forward_cost_s.items()):
            raise ValueError(f"forward costs must be positive per batch size >= 1, got "
                             f"{dict(forward_cost_s)}")
        if not overhead > 0:
            raise ValueError(f"overhead must be > 0, got {overhead}")
        self.sizes = sorted(int(size) for size in forward_cost_s)
        self.costs = [float(forward_cost_s[size]) for size in self.sizes]
        self.overhead = float(overhead)

    def call_s(self, batch: int) -> float:
        """Seconds of one model call at ``batch`` (interpolated; see the class docstring)."""
        sizes, costs = self.sizes, self.costs
        index = bisect_left(sizes, batch)
        if index < len(sizes) and sizes[index] == batch:
            return costs[index]
        if index == 0:
            return costs[0]
        if index == len(sizes):
            if len(sizes) == 1:
                return costs[0] * batch / sizes[0]
            slope = (costs[-1] - costs[-2]) / (sizes[-1] - sizes[-2])
            return costs[-1] + max(slope, 0.0) * (batch - sizes[-1])
        low, high = sizes[index - 1], sizes[index]
        weight = (batch - low) / (high - low)
        return costs[index - 1] + weight * (costs[index] - costs[index - 1])

    def model_s(self, batch_sizes: Iterable[int]) -> float:
        """Seconds of the model calls alone (no overhead) for these per-call batch sizes."""
        return sum(self.call_s(size) for size in batch_sizes)

    def predict_s(self, batch_sizes: Iterable[int]) -> float:
        """Predicted seconds of a plan whose sequential model calls have these batch sizes."""
        return self.overhead * self.model_s(batch_sizes)


@dataclass(frozen=True)
class Candidate:
    """A sampler configuration: its spec, calibrated fidelity (dB) and predicted time (s)."""

    spec: str
    fidelity_db: float
    predicted_s: float
    label: str = ""


@dataclass(frozen=True)
class Choice:
    """What :meth:`BudgetChooser.choose` picked.

    predicted_s: the corrected prediction it was chosen on; correction: the factor applied to
    the calibrated prediction; miss: nothing fitted the budget, so this is the fastest.
    """

    candidate: Candidate
    budget_s: float
    predicted_s: float
    correction: float
    miss: bool

    @property
    def spec(self) -> str:
        """Return the chosen configuration's sampler spec string (the registry's grammar)."""
        return self.candidate.spec


class _EMA:
    """A bias-corrected exponential moving average of one number (the first value as is)."""

    def __init__(self, smoothing: float) -> None:
        """Start empty; ``smoothing`` is the weight of each new value."""
        self.smoothing = smoothing
        self._sum = 0.0
        self.count = 0

    def _scale(self) -> float:
        return 1.0 - (1.0 - self.smoothing) ** self.count

    def add(self, value: float) -> None:
        """Add one value."""
        self._sum += self.smoothing * (value - self._sum)
        self.count += 1

    @property
    def value(self) -> float:
        """The average (NaN while empty)."""
        return self._sum / self._scale() if self.count else math.nan

    def relax(self, target: float, keep: float) -> None:
        """Set the average to ``keep`` x itself + (1 - ``keep``) x ``target`` (if both exist)."""
        if self.count and math.isfinite(target):
            self._sum = (keep * self.value + (1.0 - keep) * target) * self._scale()


class _LogEMA:
    """Moving averages of log ratios (``log_mean``) and of their squared forecast errors.

    ``spread``: the RMS of each new log ratio's deviation from the average before it (a
    one-step forecast error, so the spread of the next plan around its prediction), NaN before
    two observations.
    """

    def __init__(self, smoothing: float) -> None:
        """Start empty; ``smoothing`` is the weight of each new observation."""
        self._mean = _EMA(smoothing)
        self._square_error = _EMA(smoothing)

    @property
    def count(self) -> int:
        """Observations so far."""
        return self._mean.count

    def add(self, ratio: float) -> float:
        """Add one measured / predicted ratio; return its squared forecast error (NaN: first)."""
        value = math.log(ratio)
        square_error = (value - self.log_mean) ** 2 if self.count else math.nan
        if self.count:
            self._square_error.add(square_error)
        self._mean.add(value)
        return square_error

    def relax(self, log_mean: float, square_error: float, keep: float) -> None:
        """Keep ``keep`` of the own averages, take the rest from these (NaN: keep that one)."""
        self._mean.relax(log_mean, keep)
        self._square_error.relax(square_error, keep)

    @property
    def log_mean(self) -> float:
        """The averaged log ratio (NaN while empty)."""
        return self._mean.value

    @property
    def factor(self) -> float:
        """The averaged ratio (NaN while empty)."""
        return math.exp(self.log_mean)

    @property
    def spread(self) -> float:
        """RMS forecast error of the log ratio (NaN before two observations)."""
        return math.sqrt(self._square_error.value)


SPREAD_Z = 1.645
"""One-sided 95 % normal quantile: a configuration fits when its predicted time times
exp(SPREAD_Z x spread) is within the budget, so about 95 % of its plans are."""

MIN_SPREAD_OBSERVATIONS = 4
"""A configuration's own spread is used once it has run this many plans (3 forecast errors)."""


SAMPLER_MEMORY = 10
"""Plans of other samplers a sampler's factor is kept unchanged for (samplers alternate at
some budgets); after that it drifts toward the global factor like a stale estimate."""


FIDELITY_TIE_DB = 0.05
"""PSNR differences below this (dB) count as equal: a configuration that converges to another
(SRDS until converged vs DDIM-50: +0.0004 dB at 2.5x the time) is no better than it."""


class BudgetChooser:
    """Pick the configuration with the best fidelity whose predicted time fits a budget.

    ``choose(budget_s)``: among the candidates whose predicted 95th-percentile time
    (``p95_s``) is at most ``headroom`` x budget, the best fidelity; candidates within
    ``tie_db`` of the best count as tied and the fastest of them wins (then the higher fidelity,
    then the spec). When none fits: the fastest candidate, with ``miss=True``.

    Online correction: ``observe(spec, measured_s)`` after each executed plan. It keeps a
    bias-corrected EMA (``smoothing`` per observation, in log space) of measured / predicted,
    over all configurations, per sampler (the spec's name: SRDS batches its calls, so it runs
    further under its calibrated time than DDIM) and per configuration; a configuration's
    prediction is multiplied by its own factor once it has run, else by its sampler's, else by
    the global one (1 before any observation). The spread of the plans around the prediction
    is learned the same way: a configuration's own once it has run ``MIN_SPREAD_OBSERVATIONS``
    plans, else that of the measured configuration nearest in calibrated time, else
    ``spread_prior`` (log units: 0.1 = the 95th percentile 1.18x the prediction).

    What a plan did not take part in drifts toward the general estimate, as if it had kept
    running at it: a sampler that did not run in ``SAMPLER_MEMORY`` plans, toward the global
    factor; a configuration that did not run, toward its sampler's factor and the pooled
    plan-to-plan forecast error of all configurations. So one dropped after a slow plan is
    tried again once the recent plans say it fits, instead of being judged forever on the plans
    that made it stop.
    """

    def __init__(self, candidates: Sequence[Candidate], *, headroom: float = 1.0,
                 tie_db: float = FIDELITY_TIE_DB, smoothing: float = 0.3,
                 spread_prior: float = 0.0) -> None:
        """Check the candidates (unique specs, positive finite times) and the options."""
        if not candidates:
            raise ValueError("the budget chooser needs at least one candidate configuration")
        specs = [candidate.spec for candidate in candidates]
        if len(set(specs)) != len(specs):
            raise ValueError("candidate specs must be unique")
        bad = [c.spec for c in candidates if not (c.predicted_s > 0 and math.isfinite(
            c.predicted_s) and math.isfinite(c.fidelity_db))]
        if bad:
            raise ValueError(f"candidates need a finite fidelity and a predicted time > 0: "
                             f"{', '.join(bad)}")
        if (not 0 < headroom <= 10 or tie_db < 0 or not 0 < smoothing <= 1
                or not 0 <= spread_prior < 10):
            raise ValueError(f"need 0 < headroom <= 10, tie_db >= 0, 0 < smoothing <= 1, "
                             f"0 <= spread_prior < 10; got {headroom}, {tie_db}, {smoothing}, "
                             f"{spread_prior}")
        self.candidates = tuple(candidates)
        self._by_spec = {candidate.spec: candidate for candidate in candidates}
        self.headroom, self.tie_db, self.smoothing = headroom, tie_db, smoothing
        self.spread_prior = spread_prior
        self._global = _EMA(smoothing)
        self._per_sampler: dict[str, _EMA] = {}
        self._sampler_seen: dict[str, int] = {}   # sampler -> plan count at its last plan
        self._pooled_square_error = _EMA(smoothing)
        self._per_config: dict[str, _LogEMA] = {}

    def correction(self, spec: str | None = None) -> float:
        """Factor on the calibrated prediction of ``spec`` (None: the global factor)."""
        own = self._per_config.get(spec) if spec is not None else None
        if own is not None:
            return own.factor
        shared = self._global.value if spec is None else self._shared_log_mean(spec)
        return math.exp(shared) if math.isfinite(shared) else 1.0

    def _shared_log_mean(self, spec: str) -> float:
        """Return the log factor of the sampler of ``spec``, else the global one (NaN: none)."""
        sampler = self._per_sampler.get(sampler_of(spec))
        return (sampler or self._global).value

    def predicted_s(self, spec: str) -> float:
        """Corrected predicted seconds of configuration ``spec``."""
        return self._candidate(spec).predicted_s * self.correction(spec)

    def spread(self, spec: str) -> float:
        """Return the learned log-scale scatter of the plans of ``spec`` around its prediction.

        Its own once it has run ``MIN_SPREAD_OBSERVATIONS`` plans; else that of the measured
        configuration nearest to it in calibrated time (timing noise scales with plan length:
        a 5-step plan's jitter says little about a 12-step one); else ``spread_prior``.
        """
        measured = {other: ema for other, ema in self._per_config.items()
                    if ema.count >= MIN_SPREAD_OBSERVATIONS}
        if spec in measured:
            return measured[spec].spread
        if not measured:
            return self.spread_prior
        own_s = self._candidate(spec).predicted_s
        nearest = min(measured, key=lambda other: (
            abs(math.log(self._candidate(other).predicted_s / own_s)), other))
        return measured[nearest].spread

    def p95_s(self, spec: str) -> float:
        """Predicted 95th-percentile seconds of ``spec``: the prediction widened by its spread."""
        return self.predicted_s(spec) * math.exp(SPREAD_Z * self.spread(spec))

    def choose(self, budget_s: float) -> Choice:
        """Return the best configuration for ``budget_s`` seconds (class docstring)."""
        if not budget_s > 0 or math.isinf(budget_s):
            raise ValueError(f"budget must be a finite number of seconds > 0, got {budget_s}")
        predicted = {c.spec: self.predicted_s(c.spec) for c in self.candidates}
        fits = [c for c in self.candidates if self.p95_s(c.spec) <= self.headroom * budget_s]
        if fits:
            best = max(c.fidelity_db for c in fits)
            tied = [c for c in fits if c.fidelity_db >= best - self.tie_db]
            chosen = min(tied, key=lambda c: (predicted[c.spec], -c.fidelity_db, c.spec))
        else:
            chosen = min(self.candidates,
                         key=lambda c: (predicted[c.spec], -c.fidelity_db, c.spec))
        return Choice(chosen, budget_s, predicted[chosen.spec], self.correction(chosen.spec),
                      miss=not fits)

    def observe(self, spec: str, measured_s: float) -> float:
        """Feed the measured seconds of a plan run with ``spec``; return measured / predicted."""
        if not measured_s > 0 or math.isinf(measured_s):
            raise ValueError(f"measured time must be a finite number of seconds > 0, got "
                             f"{measured_s}")
        ratio = measured_s / self._candidate(spec).predicted_s
        own = self._per_config.setdefault(spec, _LogEMA(self.smoothing))
        value, keep = math.log(ratio), 1.0 - self.smoothing
        square_error = own.add(ratio)
        if math.isfinite(square_error):   # a first plan's error is the calibration's, not jitter
            self._pooled_square_error.add(square_error)
        sampler = sampler_of(spec)
        self._per_sampler.setdefault(sampler, _EMA(self.smoothing)).add(value)
        self._global.add(value)
        self._sampler_seen[sampler] = self._global.count
        for name, ema in self._per_sampler.items():
            if self._global.count - self._sampler_seen[name] > SAMPLER_MEMORY:
                ema.relax(self._global.value, keep)
        for other, ema in self._per_config.items():
            if other != spec:
                ema.relax(self._shared_log_mean(other), self._pooled_square_error.value, keep)
        return ratio

    def reset(self) -> None:
        """Forget every observation (e.g. after the device or the graph changed)."""
        self._global = _EMA(self.smoothing)
        self._per_sampler.clear()
        self._sampler_seen.clear()
        self._pooled_square_error = _EMA(self.smoothing)
        self._per_config.clear()

    def _candidate(self, spec: str) -> Candidate:
        """Return the candidate of ``spec``; ValueError naming it if there is none."""
        try:
            return self._by_spec[spec]
        except KeyError:
            raise ValueError(f"{spec!r} is not one of the chooser's configurations") from None


def sampler_of(spec: str) -> str:
    """Return the sampler name of a spec (``srds:num_steps=16`` -> ``srds``)."""
    return spec.partition(":")[0].strip()


def pareto_frontier(candidates: Iterable[Candidate],
                    tie_db: float = FIDELITY_TIE_DB) -> list[Candidate]:
    """Return the candidates no other is both faster and at least as faithful to, fastest first.

    A candidate is on the frontier when every faster one has a fidelity more than ``tie_db``
    lower (within ``tie_db`` counts as equal, as in `BudgetChooser`).
    """
    frontier: list[Candidate] = []
    for candidate in sorted(candidates, key=lambda c: (c.predicted_s, -c.fidelity_db)):
        if not frontier or candidate.fidelity_db > frontier[-1].fidelity_db + tie_db:
            frontier.append(candidate)
    return frontier
