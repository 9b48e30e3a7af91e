"""ActionPredictor around the diffusion policy: walks the plan's frames as goals (GCP-style).

Each call samples 16 actions towards one goal frame of the plan and executes the first
`num_execute`. Which frame is the goal:

- ``goal_selection="progress"`` (`PlanProgress`): of the camera image the plan started from
  and the plan's frames, the one nearest to the current camera image marks how far along the
  plan the robot is; the goal is the frame after it. The predictor asks for a new plan when the
  last frame is reached, when the progress has not moved for `patience` calls, or after
  `max_calls_per_plan` calls.
- ``goal_selection="schedule"``: the goal advances every `calls_per_goal` calls and a new plan
  is asked for after `goals_per_plan` goals (GCP: 5 calls per goal, the first 2 frames).

The gripper effort of the last executed action is remembered and fed back as proprioception
when the policy uses it (`DiffusionPolicyConfig.use_gripper`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dts_planner.models.preprocessing import image_to_cond, prepare_image
from dts_planner.predictors.base import (
    METAWORLD_ACTION_SPACE, METAWORLD_DT, ActionChunk, PlanWatcher, PredictorObservation)
from dts_planner.predictors.diffusion_policy import DiffusionPolicy, load_policy

DEFAULT_POLICY_WEIGHTS = Path(__file__).resolve().parent.parent / "weights" / "policy_default.pt"
REQUIRED_PARTS = frozenset({"rgb", "hand_pos"})
"""Observation parts the predictor reads."""
GOAL_SELECTIONS = ("progress", "schedule")


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """RGB uint8 image (H, W, 3) brought to (size, size, 3) as the planner brings camera images."""
    return prepare_image(image, (size, size), "crop_resize")


def image_batch(image: np.ndarray, size: int) -> torch.Tensor:
    """RGB uint8 image (H, W, 3) -> (1, 3, size, size) float in [0, 1]."""
    return image_to_cond(resize_square(image, size)[None])


class PlanProgress:
    """How far along a plan the camera is, from image similarity.

    Of [the camera image the plan started from, plan frame 0, ..., plan frame F - 1], the one
    nearest to the current camera image (mean absolute difference at `size` x `size` px) is the
    progress p; it never moves backwards within a plan. The goal is plan frame p (the frame after
    p). A new plan is due when the last frame is reached, when p has not moved for `patience`
    updates, or after `max_updates` updates.
    """

    def __init__(self, size: int, patience: int, max_updates: int) -> None:
        """Track plans at size x size px."""
        self.size = size
        self.patience = patience
        self.max_updates = max_updates
        self.start(None)

    def start(self, plan_frames: np.ndarray | None, rgb: np.ndarray | None = None) -> None:
        """Follow plan_frames (F, H, W, 3) made from the camera image rgb (None: no plan)."""
        self._frames = (None if plan_frames is None else np.stack(
            [resize_square(f, self.size) for f in (rgb, *plan_frames)]).astype(np.float32))
        self.progress, self._still, self._updates = 0, 0, 0

    def update(self, rgb: np.ndarray) -> tuple[int, bool]:
        """Return the goal (a plan frame index) for the camera image rgb and whether to replan."""
        current = resize_square(rgb, self.size).astype(np.float32)
        distances = np.abs(self._frames - current[None]).mean(axis=(1, 2, 3))
        nearest = int(np.argmin(distances))
        if nearest > self.progress:
            self.progress, self._still = nearest, 0
        else:
            self._still += 1
        self._updates += 1
        frames = len(self._frames) - 1
        replan = (self.progress >= frames or self._still >= self.patience
                  or self._updates >= self.max_updates)
        return min(self.progress, frames - 1), replan


class DiffusionPolicyPredictor:
    """ActionPredictor: (goal frame of the plan, proprioception) -> 16-action chunk, execute 8."""

    action_space = METAWORLD_ACTION_SPACE

    def __init__(self, policy: DiffusionPolicy | None = None, calls_per_goal: int = 2,
                 goals_per_plan: int = 2, seed: int = 0, dt: float = METAWORLD_DT,
                 goal_selection: str = "progress", patience: int = 4,
                 max_calls_per_plan: int = 12) -> None:
        """Wrap a policy (default: the shipped weights, `DEFAULT_POLICY_WEIGHTS`)."""
        if goal_selection not in GOAL_SELECTIONS:
            raise ValueError(f"goal_selection {goal_selection!r} not in {GOAL_SELECTIONS}")
        self.policy = policy if policy is not None else load_policy(str(DEFAULT_POLICY_WEIGHTS))
        # Build the sampling scheduler (diffusers, about 1 s to import) now, not in the first plan.
        self.policy.inference_scheduler
        self.calls_per_goal = calls_per_goal
        self.goals_per_plan = goals_per_plan
        self.goal_selection = goal_selection
        self.progress = PlanProgress(self.policy.config.image_size, patience, max_calls_per_plan)
        self.seed = seed
        self.dt = dt
        self._plans = PlanWatcher()
        self.reset()

    def reset(self, seed: int | None = None) -> None:
        """Forget the plan and the gripper; re-seed the noise (None: the constructor's seed)."""
        self._plans.reset()
        self._device = next(self.policy.parameters()).device
        self._generator = torch.Generator(self._device).manual_seed(
            self.seed if seed is None else seed)
        self._gripper = 0.0
        self.progress.start(None)
        self._goal, self._calls = 0, 0

    def predict(self, observation: PredictorObservation,
                plan_frames: np.ndarray) -> ActionChunk:
        """Actions (16, 4) towards the current goal frame; execute the first num_execute."""
        if self._plans.is_new(plan_frames):
            self.progress.start(plan_frames, np.asarray(observation.rgb))
            self._goal, self._calls = 0, 0
        config = self.policy.config
        if self.goal_selection == "progress":
            goal_index, replan = self.progress.update(np.asarray(observation.rgb))
        else:
            goal_index = min(self._goal, len(plan_frames) - 1)
        device = self._device
        hand = torch.as_tensor(np.asarray(observation.hand_pos, np.float32))[None]
        actions = self.policy.sample(
            image_batch(plan_frames[goal_index], config.image_size).to(device),
            image=(image_batch(np.asarray(observation.rgb), config.image_size).to(device)
                   if config.use_obs_image else None),
            hand_pos=hand.to(device),
            gripper=torch.tensor([[self._gripper]], dtype=torch.float32, device=device),
            generator=self._generator)[0].cpu().numpy()
        self._calls += 1
        if self.goal_selection == "schedule":
            if self._calls % self.calls_per_goal == 0:
                self._goal += 1
            replan = self._goal >= min(self.goals_per_plan, len(plan_frames))
        self._gripper = float(actions[config.num_execute - 1, 3])
        return ActionChunk(actions, self.dt, self.action_space,
                           num_execute=config.num_execute, replan=replan,
                           info={"goal_index": goal_index, "progress": self.progress.progress})
