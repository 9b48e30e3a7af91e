"""ActionPredictor around the diffusion policy: walks the plan's frames as goals (GCP-style).

For each goal frame the policy is called `calls_per_goal` times (each call executes the first
`num_execute` of 16 actions); after `goals_per_plan` goal frames it asks for a new plan (GCP
uses 5 calls per goal and the first 2 frames of each video).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from dts_planner.predictors.base import (
    METAWORLD_ACTION_SPACE, ActionChunk, PlanWatcher, PredictorObservation)
from dts_planner.predictors.diffusion_policy import DiffusionPolicy, load_policy
from dts_planner.predictors.manipulation_flow_policy import METAWORLD_DT

DEFAULT_POLICY_WEIGHTS = Path(__file__).resolve().parent.parent / "weights" / "policy_default.pt"
REQUIRED_PARTS = frozenset({"rgb", "hand_pos"})
"""Observation parts the predictor reads."""


def image_batch(image: np.ndarray, size: int) -> torch.Tensor:
    """RGB uint8 image (H, W, 3) -> (1, 3, size, size) float in [0, 1]."""
    if image.shape[:2] != (size, size):
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255


class DiffusionPolicyPredictor:
    """ActionPredictor: (observation, goal frame of the plan) -> 16-action chunk, execute 8."""

    action_space = METAWORLD_ACTION_SPACE

    def __init__(self, policy: DiffusionPolicy | None = None, calls_per_goal: int = 2,
                 goals_per_plan: int = 2, seed: int = 0, dt: float = METAWORLD_DT) -> None:
        """Wrap a policy (default: the shipped weights, `DEFAULT_POLICY_WEIGHTS`)."""
        self.policy = policy if policy is not None else load_policy(str(DEFAULT_POLICY_WEIGHTS))
        self.calls_per_goal = calls_per_goal
        self.goals_per_plan = goals_per_plan
        self.seed = seed
        self.dt = dt
        self._plans = PlanWatcher()
        self.reset()

    def reset(self, seed: int | None = None) -> None:
        """Forget the plan and re-seed the sampling noise (None: the seed it was built with)."""
        self._plans.reset()
        self._device = next(self.policy.parameters()).device
        self._generator = torch.Generator(self._device).manual_seed(
            self.seed if seed is None else seed)
        self._goal = 0
        self._calls = 0

    def predict(self, observation: PredictorObservation,
                plan_frames: np.ndarray) -> ActionChunk:
        """Actions (16, 4) towards the current goal frame; execute the first num_execute."""
        if self._plans.is_new(plan_frames):
            self._goal, self._calls = 0, 0
        config = self.policy.config
        goal_index = min(self._goal, len(plan_frames) - 1)
        hand = torch.as_tensor(np.asarray(observation.hand_pos, np.float32))[None]
        actions = self.policy.sample(
            image_batch(observation.rgb, config.image_size).to(self._device),
            image_batch(plan_frames[goal_index], config.image_size).to(self._device),
            hand.to(self._device), self._generator)[0]
        self._calls += 1
        if self._calls >= self.calls_per_goal:
            self._goal, self._calls = self._goal + 1, 0
        replan = self._goal >= min(self.goals_per_plan, len(plan_frames))
        return ActionChunk(actions.cpu().numpy(), self.dt, self.action_space,
                           num_execute=config.num_execute, replan=replan,
                           info={"goal_index": goal_index})
