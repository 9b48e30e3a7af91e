"""Action predictors: plan frames + observation -> action chunks (ROS-free)."""

from dts_planner.predictors.base import (
    METAWORLD_ACTION_SPACE, NAVIGATION_ACTION_SPACE, NAVIGATION_LABELS, ActionChunk,
    ActionPredictor, ActionSpace, PredictorObservation)
from dts_planner.predictors.factory import (
    DEFAULT_KIND, make_predictor, PLAN_KINDS, PREDICTOR_KINDS, required_parts, uses_torch)

__all__ = [
    "METAWORLD_ACTION_SPACE", "NAVIGATION_ACTION_SPACE", "NAVIGATION_LABELS", "ActionChunk",
    "ActionPredictor", "ActionSpace", "DEFAULT_KIND", "make_predictor", "PLAN_KINDS",
    "PREDICTOR_KINDS", "PredictorObservation", "required_parts", "uses_torch",
]
