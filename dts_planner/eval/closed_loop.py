"""The evaluation's driver of the closed loop: one simulated episode under the policy's rules.

The rules (when to plan, which plan to follow, plan seeds) are `dts_planner.policy`'s, the same
the action-predictor node follows in the ROS graph. This module only turns them into
environment steps: plan synchronously when asked (the simulation waits, as the lockstep bridge
does), execute each chunk's rows, stop at the first success or the step limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from dts_planner.policy import ClosedLoopPolicy, PlanRequest
from dts_planner.predictors.base import METAWORLD_DT


@dataclass
class PlanRecord:
    """Cost of one plan: sampling time (s), network evaluations and sequential depth."""

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
    camera: str = ""


class Environment(Protocol):
    """What the loop needs from `dts_planner.sim.MetaWorldEnv`."""

    task: str
    camera: str

    def reset(self, seed: int | None = None): ...  # noqa: D102

    def step(self, action: np.ndarray): ...  # noqa: D102


PlanFunction = Callable[[object, "int | None"], tuple[np.ndarray, PlanRecord | None]]
"""(observation, noise seed) -> (plan frames (F, H, W, 3) uint8, cost record or None)."""


def step_stamp_ns(steps: int) -> int:
    """Return the simulated acquisition time (ns) of the observation after `steps` steps."""
    return round(steps * METAWORLD_DT * 1e9)


def run_episode(env: Environment, seed: int, policy: ClosedLoopPolicy, plan: PlanFunction,
                max_steps: int = 500, record: bool = False) -> EpisodeResult:
    """Run one episode of `env` from task variation `seed` under `policy`; return its result."""
    observation = env.reset(seed)
    policy.reset(seed)
    result = EpisodeResult(env.task, seed, success=False, steps=0, camera=env.camera)
    plan_step = 0
    while True:
        stamp = step_stamp_ns(result.steps)
        decision = policy.decide(observation, stamp)
        if isinstance(decision, PlanRequest):
            frames, cost = plan(observation, decision.seed)
            if cost is not None:
                result.plans.append(cost)
            policy.accept_plan(frames, stamp)
            plan_step = 0
            continue
        result.actions_in_space &= policy.predictor.action_space.contains(decision.data)
        for action in decision.data[:decision.num_execute]:
            if record:
                result.frames.append((observation.rgb, policy.frames[plan_step % len(
                    policy.frames)] if policy.frames is not None else observation.rgb))
            step = env.step(action)
            observation, result.success = step.observation, step.success
            result.steps += 1
            plan_step += 1
            if step.done or result.steps >= max_steps:
                return result
