"""The closed-loop rules of the video policy: when to plan, which plan to follow, what to do.

One implementation for both drivers: the evaluation loop (`dts_planner.eval.closed_loop`) and
the action-predictor node (`dts_planner.ros.action_predictor_node`), so the ROS graph is the
policy the evaluation measures. AVDC's loop (AVDC_experiments `benchmark_mw.py`): plan from the
episode's first observation; follow the plan with the action predictor; when the predictor asks
for a new plan (`ActionChunk.replan`), plan again from the observation after the chunk, at most
`max_plans` plans per episode; the world waits while a plan is made (the robot does not act on
an old plan in the meantime). Plan `i` of an episode with seed `s` draws its noise from seed
`1000 * s + i`, so runs repeat exactly.

A driver calls `reset(episode_seed)` at the start of each episode, then `decide(observation,
stamp_ns)` for every new observation: the answer is either a `PlanRequest` (make a plan from an
observation stamped at or after `min_stamp_ns` with noise seed `seed`, hand it to
`accept_plan`, and do not act until then) or an `ActionChunk` to execute.
"""

from __future__ import annotations

from dataclasses import dataclass
import math

import numpy as np

from dts_planner.predictors.base import ActionChunk, ActionPredictor, PredictorObservation

SEEDS_PER_EPISODE = 1000
"""Plan noise seeds of an episode with seed s: SEEDS_PER_EPISODE * s + plan index."""


@dataclass(frozen=True)
class LoopRules:
    """The rules' settings.

    max_plans: plans per episode (AVDC: 6 = the first plan and 5 replans); 0 = no limit.
    max_plan_age_s: a plan whose source frame is older than this at an observation (stamp
    difference, s) is replaced as if the predictor had asked for a new plan.
    """

    max_plans: int = 6
    max_plan_age_s: float = math.inf

    def __post_init__(self) -> None:
        """Check the settings."""
        if self.max_plans < 0:
            raise ValueError(f"max_plans must be >= 0 (0 = no limit), got {self.max_plans}")
        if not self.max_plan_age_s > 0:
            raise ValueError(f"max_plan_age_s must be > 0, got {self.max_plan_age_s}")


@dataclass(frozen=True)
class PlanRequest:
    """Make plan `index` of the episode from a frame stamped at or after `min_stamp_ns`.

    seed: noise seed of the plan; None when the episode seed is unknown (the planner decides).
    """

    index: int
    min_stamp_ns: int
    seed: int | None


def plan_seed(episode_seed: int | None, index: int) -> int | None:
    """Noise seed of plan `index` of an episode (None when the episode seed is unknown)."""
    if episode_seed is None:
        return None
    return SEEDS_PER_EPISODE * episode_seed + index


def hold(predictor: ActionPredictor) -> ActionChunk:
    """One all-zero action: stand still (no motion, gripper effort 0, navigation Stop)."""
    space = predictor.action_space
    return ActionChunk(np.zeros((1, space.dim), np.float32), 0.0, space, num_execute=1,
                       info={"hold": True})


class ClosedLoopPolicy:
    """State of one episode under the rules; wraps the episode's `ActionPredictor`."""

    def __init__(self, predictor: ActionPredictor, rules: LoopRules | None = None) -> None:
        """Follow plans with `predictor` under `rules`; call `reset` before each episode."""
        self.predictor = predictor
        self.rules = rules or LoopRules()
        self.reset()

    def reset(self, episode_seed: int | None = None) -> None:
        """Start an episode: forget the plan, reset the predictor with the episode's seed."""
        self.predictor.reset(episode_seed)
        self.episode_seed = episode_seed
        self.plans_made = 0
        self.frames: np.ndarray | None = None
        self.plan_stamp_ns = -1
        self.pending: PlanRequest | None = None
        self._wants_plan = True

    @property
    def plans_left(self) -> bool:
        """Whether the episode may still make a plan."""
        return self.rules.max_plans == 0 or self.plans_made < self.rules.max_plans

    def decide(self, observation: PredictorObservation,
               stamp_ns: int) -> PlanRequest | ActionChunk:
        """Decide what to do at `observation` (stamped `stamp_ns`): ask for a plan, or act."""
        if self.pending is not None:
            return self.pending
        if self.frames is not None and self._plan_age_s(stamp_ns) > self.rules.max_plan_age_s:
            self._wants_plan = True
        if self._wants_plan and self.plans_left:
            self.pending = PlanRequest(self.plans_made, stamp_ns,
                                       plan_seed(self.episode_seed, self.plans_made))
            return self.pending
        self._wants_plan = False
        if self.frames is None:     # no plan can be made any more
            return hold(self.predictor)
        chunk = self.predictor.predict(observation, self.frames)
        if chunk.replan or chunk.num_execute == 0:
            self._wants_plan = True
        if chunk.num_execute == 0:
            return self.decide(observation, stamp_ns) if self.plans_left else hold(self.predictor)
        return chunk

    def accept_plan(self, frames: np.ndarray, source_stamp_ns: int) -> bool:
        """Follow `frames` (F, H, W, 3) uint8 planned from a frame stamped `source_stamp_ns`.

        A requested plan is accepted when its source is at least as new as the request; a plan
        nobody asked for (a planner that replans on its own) when it is newer than the current
        plan and the episode may still make one. Returns whether the plan was accepted.
        """
        if self.pending is not None:
            if source_stamp_ns < self.pending.min_stamp_ns:
                return False
        elif source_stamp_ns <= self.plan_stamp_ns or not self.plans_left:
            return False
        self.frames = np.asarray(frames)
        self.plan_stamp_ns = source_stamp_ns
        self.plans_made += 1
        self.pending = None
        self._wants_plan = False
        return True

    def _plan_age_s(self, stamp_ns: int) -> float:
        return (stamp_ns - self.plan_stamp_ns) / 1e9
