"""Reference predictors for the evaluation: Meta-World's scripted expert and random actions."""

from __future__ import annotations

from metaworld.policies import ENV_POLICY_MAP
import numpy as np

from dts_planner.predictors.base import METAWORLD_ACTION_SPACE, ActionChunk
from dts_planner.predictors.manipulation_flow_policy import METAWORLD_DT


class ExpertPredictor:
    """ActionPredictor that ignores the plan and runs the task's scripted expert on the state.

    Needs `observation.state` (39,) (`dts_planner.sim.Observation`); task e.g. "door-open-v3".
    """

    action_space = METAWORLD_ACTION_SPACE

    def __init__(self, task: str) -> None:
        """Create the expert of a Meta-World v3 task."""
        self.expert = ENV_POLICY_MAP[task]()

    def reset(self) -> None:
        """Nothing to forget: the experts are stateless."""

    def predict(self, observation, plan_frames: np.ndarray) -> ActionChunk:
        """One expert action (1, 4), clipped to the action box."""
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

    def reset(self) -> None:
        """Re-seed the generator."""
        self._rng = np.random.default_rng(self.seed)

    def predict(self, observation, plan_frames: np.ndarray) -> ActionChunk:
        """Uniform actions (horizon, 4)."""
        space = self.action_space
        data = self._rng.uniform(space.low, space.high, (self.horizon, space.dim))
        return ActionChunk(data, METAWORLD_DT, space, num_execute=self.horizon)
