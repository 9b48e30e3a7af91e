"""Calibration of the samplers to a model and a device (issue 16), ROS-free and torch-free.

- :mod:`~dts_planner.calibration.thresholds`: DTS thresholds (lambda0, Delta, per-element RMS)
  for a target acceptance rate, fitted on the model's draft-to-target distances.
- :mod:`~dts_planner.calibration.budget`: the cost model (forward cost per batch size) and the
  latency-budget chooser with its online correction.
- :mod:`~dts_planner.calibration.file`: the calibration file (``Calibration``), its model hash
  check and lookup convention.

``python -m dts_planner.calibrate`` measures a model and writes the file; importing this package
loads no torch (fitting thresholds for a settings object imports the sampler core lazily).
"""

from dts_planner.calibration.budget import (BudgetChooser, Candidate, Choice, CostModel,
                                            pareto_frontier, sampler_of)
from dts_planner.calibration.file import (
    Calibration, calibration_path, CalibrationError, device_kind, file_sha256, find_calibration,
    FORMAT, hash_matches, locate_calibration, MeasuredConfig)
from dts_planner.calibration.thresholds import (fit_thresholds, GROWTHS, rank_thresholds,
                                                Replay, replay, step_table, ThresholdFit)

__all__ = [
    "BudgetChooser", "Calibration", "CalibrationError", "Candidate", "Choice", "CostModel",
    "FORMAT", "GROWTHS", "MeasuredConfig", "Replay", "ThresholdFit", "calibration_path",
    "device_kind", "file_sha256", "find_calibration", "fit_thresholds", "hash_matches",
    "locate_calibration", "pareto_frontier", "rank_thresholds", "replay", "sampler_of",
    "step_table",
]
