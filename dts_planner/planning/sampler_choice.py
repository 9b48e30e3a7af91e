"""Which sampler a plan runs: auto DTS thresholds from a calibration, or a latency budget's pick.

The planner node keeps one `SamplerChoice` per loaded model. `for_plan(configured, budget_s)`
turns the configured settings (the `sampler` and `<sampler>.*` parameters) into the settings a
plan runs with:

- budget 0 (off): the configured settings; a DTS threshold left at -1 (auto, also as a block
  speculative target) takes the calibration's thresholds for its strides and chunk, else the
  paper's;
- budget > 0: the calibrated configuration with the best fidelity whose predicted time fits the
  budget (`dts_planner.calibration.BudgetChooser`: the calibration's cost model corrected online
  by the plans' measured times, `observe`); nothing fits: the fastest, marked as a miss.

ROS-free; built samplers are cached by settings.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from pathlib import Path

from dts_planner.calibration import BudgetChooser, Calibration, CalibrationError
from dts_planner.diffusion import DTSSettings, parse_spec, Sampler, SamplerSettings
import dts_planner.peers  # noqa: F401  (a calibrated configuration may name a peer: srds, ...)

NO_THRESHOLDS = ""
"""threshold_source of a plan whose sampler has no DTS thresholds."""

SPREAD_PRIOR = 0.1
"""Spread assumed before any plan is measured: a configuration fits a budget when its
prediction is within 0.85x of it (exp(-1.645 x 0.1)); measured spreads replace it."""


@dataclass(frozen=True)
class PlanSampler:
    """The settings one plan runs with, and why.

    threshold_source: where DTS's thresholds come from ("" for other samplers); budget_s: the
    latency budget (0: off); budget_spec: the chosen candidate's spec in the calibration;
    predicted_s: the budget chooser's corrected prediction (NaN: off); miss: nothing fitted
    the budget, so the fastest configuration runs.
    """

    settings: SamplerSettings
    threshold_source: str = NO_THRESHOLDS
    budget_s: float = 0.0
    budget_spec: str = ""
    predicted_s: float = math.nan
    miss: bool = False


class SamplerChoice:
    """Settings per plan for one model: auto thresholds and the latency-budget chooser."""

    def __init__(self, calibration: Calibration | None, note: str,
                 spread_prior: float = SPREAD_PRIOR) -> None:
        """Use `calibration` (None: none for this model; `note` says why or which file).

        spread_prior: the plans' spread around the prediction (log units) assumed until the
        chooser has measured it (`BudgetChooser`: a configuration fits when its predicted
        95th-percentile time is within the budget).
        """
        self.calibration = calibration
        self.note = note
        self.chooser: BudgetChooser | None = (
            calibration.chooser(spread_prior=spread_prior) if calibration is not None
            else None)
        self._samplers: dict[SamplerSettings, Sampler] = {}

    @property
    def budget_available(self) -> bool:
        """Whether a latency budget can be met (a calibration with candidates is loaded)."""
        return self.chooser is not None

    def for_plan(self, configured: SamplerSettings, budget_s: float = 0.0) -> PlanSampler:
        """Return the settings the next plan runs with (module docstring)."""
        if budget_s > 0 and self.chooser is not None:
            choice = self.chooser.choose(budget_s)
            settings = parse_spec(choice.spec)
            return PlanSampler(settings, self._source(settings, "calibration candidate"),
                               budget_s, choice.spec, choice.predicted_s, choice.miss)
        return PlanSampler(*self.resolve(configured))

    def resolve(self, settings: SamplerSettings) -> tuple[SamplerSettings, str]:
        """Replace an auto DTS threshold (-1, also a target's); return it with its source."""
        target = getattr(settings, "target_settings", None)
        if isinstance(target, DTSSettings):
            resolved, source = self.resolve(target)
            return settings.with_target(resolved), source
        if not isinstance(settings, DTSSettings):
            return settings, NO_THRESHOLDS
        if not settings.auto_threshold:
            return settings, self._source(settings, "parameters")
        if self.calibration is not None:
            try:
                resolved = self.calibration.dts_settings(base=settings)
                origin = (f"auto: {Path(self.calibration.source).name or 'calibration'}, target "
                          f"acceptance {self.calibration.target_acceptance:g}")
                return resolved, self._source(resolved, origin)
            except CalibrationError as error:
                paper = settings.with_paper_thresholds()
                return paper, self._source(paper, f"auto: the paper's ({error})")
        paper = settings.with_paper_thresholds()
        return paper, self._source(paper, f"auto: the paper's ({self.note})")

    def sampler(self, settings: SamplerSettings) -> Sampler:
        """Return the built sampler of `settings` (built once)."""
        if settings not in self._samplers:
            self._samplers[settings] = settings.build()
        return self._samplers[settings]

    def observe(self, plan: PlanSampler, sampling_s: float) -> None:
        """Feed a budget plan's measured sampling time to the chooser's online correction."""
        if plan.budget_spec and self.chooser is not None and sampling_s > 0:
            self.chooser.observe(plan.budget_spec, sampling_s)

    @staticmethod
    def _source(settings: SamplerSettings, origin: str) -> str:
        """Describe DTS thresholds: '<origin>: threshold T, increment I (<distance>)', else ''."""
        if not isinstance(settings, DTSSettings):
            target = getattr(settings, "target_settings", None)
            return SamplerChoice._source(target, origin) if target is not None else ""
        return (f"{origin}: threshold {settings.threshold:g}, increment "
                f"{settings.increment:g} ({settings.distance})")
