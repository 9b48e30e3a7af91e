"""Reference predictors: Meta-World's scripted expert, random actions, and a plan-blind wrapper."""

from __future__ import annotations

import warnings

import cv2
import numpy as np

from dts_planner.predictors.base import (
    METAWORLD_ACTION_SPACE, METAWORLD_DT, ActionChunk, ActionPredictor, PlanWatcher,
    PredictorObservation)


class ExpertPredictor:
    """ActionPredictor that ignores the plan and runs the task's scripted expert on the state.

    Needs `observation.state` (39,) (`dts_planner.sim.Observation`); task e.g. "door-open-v3".
    """

    action_space = METAWORLD_ACTION_SPACE

    def __init__(self, task: str) -> None:
        """Create the expert of a Meta-World v3 task."""
        from metaworld.policies import ENV_POLICY_MAP
        self.expert = ENV_POLICY_MAP[task]()

    def reset(self, seed: int | None = None) -> None:
        """Nothing to forget: the experts are stateless and draw nothing at random."""

    def predict(self, observation, plan_frames: np.ndarray) -> ActionChunk:
        """One expert action (1, 4), clipped to the action box."""
        with warnings.catch_warnings():   # the experts saturate on purpose
            warnings.filterwarnings("ignore", "Constant", UserWarning)
            action = np.clip(self.expert.get_action(observation.state), -1.0, 1.0)
        return ActionChunk(action[None], METAWORLD_DT, self.action_space, num_execute=1)


class RandomPredictor:
    """ActionPredictor drawing uniform actions from the action box (a lower bound)."""

    action_space = METAWORLD_ACTION_SPACE

    def __init__(self, seed: int = 0, horizon: int = 8) -> None:
        """Draw chunks of `horizon` actions from a generator seeded with `seed`."""
        self.seed = seed
        self.horizon = horizon
        self.reset()

    def reset(self, seed: int | None = None) -> None:
        """Re-seed the generator (None: the seed it was built with)."""
        self._rng = np.random.default_rng(self.seed if seed is None else seed)

    def predict(self, observation, plan_frames: np.ndarray) -> ActionChunk:
        """Uniform actions (horizon, 4)."""
        space = self.action_space
        data = self._rng.uniform(space.low, space.high, (self.horizon, space.dim))
        return ActionChunk(data, METAWORLD_DT, space, num_execute=self.horizon)


def still_frames(rgb: np.ndarray, like: np.ndarray) -> np.ndarray:
    """Repeat the observation rgb (H, W, 3) as a plan shaped like `like` (F, h, w, 3) uint8."""
    height, width = like.shape[1:3]
    if rgb.shape[:2] != (height, width):
        rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
    return np.repeat(rgb[None], len(like), axis=0)


class NoPlanPredictor:
    """The "no plan" baseline: a plan-following predictor that never sees the plan.

    Whenever a new plan arrives, the wrapped predictor gets the current camera frame repeated
    instead (nothing imagined); it keeps that still plan until the next new plan, exactly as
    if the planner had returned it. A predictor that still succeeds ignores its plans.
    """

    def __init__(self, inner: ActionPredictor) -> None:
        """Wrap `inner` (it keeps its action space)."""
        self.inner = inner
        self.action_space = inner.action_space
        self._plans = PlanWatcher()
        self._still: np.ndarray | None = None

    def reset(self, seed: int | None = None) -> None:
        """Reset the wrapped predictor and forget the still plan."""
        self.inner.reset(seed)
        self._plans.reset()
        self._still = None

    def predict(self, observation: PredictorObservation,
                plan_frames: np.ndarray) -> ActionChunk:
        """Return the wrapped predictor's chunk for the current still plan."""
        if self._plans.is_new(plan_frames) or self._still is None:
            self._still = still_frames(np.asarray(observation.rgb), plan_frames)
        return self.inner.predict(observation, self._still)
