"""The closed-loop rules shared by the evaluation and the action-predictor node."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dts_planner.policy import ClosedLoopPolicy, LoopRules, plan_seed, PlanRequest
from dts_planner.predictors import ActionChunk, METAWORLD_ACTION_SPACE


class ScriptedPredictor:
    """Returns one action per call; asks for a new plan on the calls listed in `replan_at`."""

    action_space = METAWORLD_ACTION_SPACE

    def __init__(self, replan_at: tuple[int, ...] = (), empty_at: tuple[int, ...] = ()) -> None:
        self.replan_at, self.empty_at = replan_at, empty_at
        self.calls: list[tuple[int, int]] = []   # (call index, plan id) per predict
        self.seeds: list[int | None] = []

    def reset(self, seed: int | None = None) -> None:
        self.seeds.append(seed)
        self.calls = []

    def predict(self, observation, plan_frames: np.ndarray) -> ActionChunk:
        index = len(self.calls)
        self.calls.append((index, int(plan_frames[0, 0, 0, 0])))
        rows = 0 if index in self.empty_at else 1
        return ActionChunk(np.full((1, 4), 0.5), 0.01, self.action_space, num_execute=rows,
                           replan=index in self.replan_at)


def frames(plan_id: int) -> np.ndarray:
    """Return a recognisable (2, 4, 4, 3) plan."""
    return np.full((2, 4, 4, 3), plan_id, np.uint8)


def test_first_decision_asks_for_the_first_plan_with_the_episode_seed() -> None:
    policy = ClosedLoopPolicy(ScriptedPredictor())
    policy.reset(7)
    request = policy.decide(None, 100)
    assert request == PlanRequest(index=0, min_stamp_ns=100, seed=7000)
    assert policy.decide(None, 120) is request          # still waiting: nothing to do
    assert not policy.accept_plan(frames(1), 99)         # planned from an older frame
    assert policy.accept_plan(frames(1), 120)
    chunk = policy.decide(None, 130)
    assert isinstance(chunk, ActionChunk) and policy.predictor.calls == [(0, 1)]
    assert policy.predictor.seeds[-1] == 7 and plan_seed(None, 3) is None


def test_replan_after_the_chunk_that_asked_and_at_most_max_plans() -> None:
    policy = ClosedLoopPolicy(ScriptedPredictor(replan_at=(1, 2, 4)), LoopRules(max_plans=2))
    policy.reset(1)
    policy.accept_plan(frames(1), policy.decide(None, 0).min_stamp_ns)
    assert isinstance(policy.decide(None, 1), ActionChunk)            # call 0
    assert isinstance(policy.decide(None, 2), ActionChunk)            # call 1 asks to replan
    request = policy.decide(None, 3)                                  # ... after its chunk
    assert request == PlanRequest(1, 3, 1001)
    policy.accept_plan(frames(2), 3)
    assert isinstance(policy.decide(None, 4), ActionChunk)            # call 2 asks again
    assert isinstance(policy.decide(None, 5), ActionChunk)            # no plans left: follow
    assert policy.plans_made == 2 and policy.predictor.calls[-1] == (3, 2)


def test_no_actions_means_a_new_plan_or_holding_still() -> None:
    policy = ClosedLoopPolicy(ScriptedPredictor(empty_at=(0, 1)), LoopRules(max_plans=2))
    policy.reset(0)
    policy.accept_plan(frames(1), 0)
    request = policy.decide(None, 1)             # no actions -> the second plan
    assert isinstance(request, PlanRequest) and request.index == 1
    policy.accept_plan(frames(2), 1)
    hold = policy.decide(None, 2)                # no actions, no plans left -> stand still
    assert hold.info["hold"] and not hold.data.any() and hold.num_execute == 1


def test_old_plans_are_replaced_and_unrequested_newer_plans_are_followed() -> None:
    policy = ClosedLoopPolicy(ScriptedPredictor(), LoopRules(max_plans=0, max_plan_age_s=1.0))
    policy.reset(None)
    first = policy.decide(None, 0)
    assert first.seed is None
    policy.accept_plan(frames(1), 0)
    assert isinstance(policy.decide(None, 500_000_000), ActionChunk)
    assert isinstance(policy.decide(None, 1_500_000_000), PlanRequest)   # plan 1.5 s old
    policy.accept_plan(frames(2), 1_500_000_000)
    assert policy.accept_plan(frames(3), 1_600_000_000)     # a planner replanning on its own
    assert not policy.accept_plan(frames(4), 1_600_000_000)  # not newer
    assert policy.plans_made == 3


def test_rules_are_checked() -> None:
    with pytest.raises(ValueError, match="max_plans"):
        LoopRules(max_plans=-1)
    with pytest.raises(ValueError, match="max_plan_age_s"):
        LoopRules(max_plan_age_s=0.0)
    assert LoopRules().max_plan_age_s == math.inf and LoopRules().max_plans == 6
