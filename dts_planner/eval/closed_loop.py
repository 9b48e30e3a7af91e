"""One closed-loop episode: observe -> plan -> predict -> step -> replan (AVDC's loop).

The predictor asks for a new plan through `ActionChunk.replan`; at most `max_plans` plans are
made per episode (AVDC: 1 + 5 replans). An episode ends at the first success or the step limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from dts_planner.predictors.base import ActionPredictor


@dataclass
class PlanRecord:
    """Cost of one plan: wall time (s), network evaluations and sequential depth."""

    time_s: float
    nfe: int
    depth: int


@dataclass
class EpisodeResult:
    """Outcome of one episode; `frames` holds (observation, plan frame) pairs when recorded."""

    task: str
    seed: int
    success: bool
    steps: int
    plans: list[PlanRecord] = field(default_factory=list)
    actions_in_space: bool = True
    frames: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)


class Environment(Protocol):
    """What the loop needs from `dts_planner.sim.MetaWorldEnv`."""

    task: str

    def reset(self, seed: int | None = None): ...  # noqa: D102

    def step(self, action: np.ndarray): ...  # noqa: D102


PlanFunction = Callable[[object], tuple[np.ndarray, PlanRecord | None]]
"""observation -> (plan frames (F, H, W, 3) uint8, cost record or None if nothing was planned)."""


def run_episode(env: Environment, seed: int, predictor: ActionPredictor, plan: PlanFunction,
                max_steps: int = 500, max_plans: int = 6, record: bool = False) -> EpisodeResult:
    """Run one episode of `env` from task variation `seed` and return its result."""
    observation = env.reset(seed)
    predictor.reset()
    result = EpisodeResult(env.task, seed, success=False, steps=0)

    def new_plan(obs: object) -> np.ndarray:
        frames, cost = plan(obs)
        if cost is not None:
            result.plans.append(cost)
        return frames

    frames = new_plan(observation)
    plans_made, plan_step = 1, 0
    while True:
        chunk = predictor.predict(observation, frames)
        result.actions_in_space &= predictor.action_space.contains(chunk.data)
        for action in chunk.data[:chunk.num_execute]:
            if record:
                result.frames.append((observation.rgb, frames[plan_step % len(frames)]))
            step = env.step(action)
            observation, result.success = step.observation, step.success
            result.steps += 1
            plan_step += 1
            if step.done or result.steps >= max_steps:
                return result
        if chunk.replan and plans_made < max_plans:
            frames, plans_made, plan_step = new_plan(observation), plans_made + 1, 0
        elif chunk.num_execute == 0:
            return result
