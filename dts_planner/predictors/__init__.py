"""Action predictors: plan frames + observation -> action chunks (ROS-free)."""

from dts_planner.predictors.base import (
    METAWORLD_ACTION_SPACE, NAVIGATION_ACTION_SPACE, NAVIGATION_LABELS, ActionChunk,
    ActionPredictor, ActionSpace, PredictorObservation)

__all__ = [
    "METAWORLD_ACTION_SPACE", "NAVIGATION_ACTION_SPACE", "NAVIGATION_LABELS", "ActionChunk",
    "ActionPredictor", "ActionSpace", "PredictorObservation",
]
