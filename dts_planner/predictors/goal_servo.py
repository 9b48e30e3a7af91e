"""ActionPredictor: servo the hand to the plan's frames, read by the policy's goal-state head.

The diffusion policy's goal-state head (`DiffusionPolicyConfig.aux_goal_state`) estimates,
from one plan frame alone, where the hand is in it (metres) and which gripper effort it was
taking. Those are the plan's waypoints (AVDC's subgoals, read by a network instead of optical
flow). Every step the hand moves towards the current waypoint (AVDC's proportional control:
clip(gain * error)); a waypoint is reached within `reach` m (`grip_reach` when it changes the
gripper, so a grasp closes at the object) or when the hand has stalled for `stall_steps` steps
(pushing against something). A grasp (a waypoint that closes the gripper) is aimed
`grasp_descent` below its estimate, so it closes when the fingers meet the object or the table:
one plan frame's hand height is read a few centimetres high, and closing there grips air. On
reaching it the gripper takes its effort; after a change the hand holds still for `grip_wait`
steps while the fingers move. After the last waypoint the predictor asks for a new plan.
Nothing but the plan says where to go: a plan that imagines nothing (the current frame
repeated) keeps the hand where it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dts_planner.predictors.base import (
    METAWORLD_ACTION_SPACE, METAWORLD_DT, ActionChunk, PlanWatcher, PredictorObservation)
from dts_planner.predictors.diffusion_policy import DiffusionPolicy, load_policy
from dts_planner.predictors.diffusion_policy_predictor import DEFAULT_POLICY_WEIGHTS, image_batch

REQUIRED_PARTS = frozenset({"rgb", "hand_pos"})
"""Observation parts the predictor reads."""


@dataclass(frozen=True)
class GoalServoConfig:
    """Settings of the goal servo (metres, control steps of `dt` seconds)."""

    gain: float = 20.0              # proportional gain: action = clip(gain * error, -1, 1)
    reach: float = 0.02             # a waypoint is reached within this distance ...
    grip_reach: float = 0.01        # ... or this one when it changes the gripper
    grip_wait: int = 8              # steps to hold still while the fingers move
    close_above: float = 0.5        # an effort above this closes the gripper
    grip_effort: float = 0.8        # the effort a closed gripper keeps
    grasp_descent: float = 0.05     # a closing waypoint is aimed this far below its estimate
    stall_steps: int = 10           # a waypoint counts as reached after this many still steps
    stall_distance: float = 0.001   # a step moving less than this is still
    dt: float = METAWORLD_DT        # control period (s)


class GoalServoPredictor:
    """ActionPredictor: one action per call towards the goal frame's estimated hand state."""

    action_space = METAWORLD_ACTION_SPACE

    def __init__(self, policy: DiffusionPolicy | None = None,
                 config: GoalServoConfig | None = None) -> None:
        """Wrap a policy with a goal-state head (default: the shipped weights)."""
        self.policy = policy if policy is not None else load_policy(str(DEFAULT_POLICY_WEIGHTS))
        if self.policy.goal_state is None:
            raise ValueError("the goal servo needs a diffusion policy with a goal-state head "
                             "(DiffusionPolicyConfig.aux_goal_state)")
        self.config = config or GoalServoConfig()
        self._plans = PlanWatcher()
        self.reset()

    def reset(self, seed: int | None = None) -> None:
        """Forget the plan, the gripper and the waypoints (nothing here is random)."""
        self._plans.reset()
        self.waypoints = np.zeros((0, 4))
        self.index = 0
        self._gripper = 0.0
        self._hold = 0
        self._stalled = 0
        self._last_hand: np.ndarray | None = None

    @torch.no_grad()
    def goal_states(self, frames: np.ndarray) -> np.ndarray:
        """(hand x, y, z in metres, gripper effort) (F, 4) estimated from each plan frame."""
        policy = self.policy
        device = next(policy.parameters()).device
        images = torch.cat([image_batch(frame, policy.config.image_size) for frame in frames])
        states = policy.goal_state(policy.goal_encoder(images.to(device) * 2 - 1))
        states = states.cpu().numpy().astype(np.float64)
        states[:, :3] /= 10.0   # the head works in decimetres
        return states

    def _closed(self, effort: float) -> bool:
        return effort > self.config.close_above

    def _target(self, index: int) -> np.ndarray:
        """Waypoint ``index``'s hand position; a grasp (it closes the gripper) aimed lower."""
        target = self.waypoints[index, :3].copy()
        if self._closed(self.waypoints[index, 3]) and not self._closed(self._gripper):
            target[2] -= self.config.grasp_descent
        return target

    def predict(self, observation: PredictorObservation,
                plan_frames: np.ndarray) -> ActionChunk:
        """One action (1, 4) towards the current waypoint, with the gripper effort."""
        config = self.config
        if self._plans.is_new(plan_frames):
            self.waypoints, self.index = self.goal_states(plan_frames), 0
        hand = np.asarray(observation.hand_pos, dtype=np.float64)
        moved = self._last_hand is None or (
            np.linalg.norm(hand - self._last_hand) > config.stall_distance)
        self._stalled = 0 if moved or self._hold else self._stalled + 1
        self._last_hand = hand
        last = len(self.waypoints) - 1
        while self.index <= last and not self._hold:
            target, effort = self._target(self.index), self.waypoints[self.index, 3]
            toggles = self._closed(effort) != self._closed(self._gripper)
            reach = config.grip_reach if toggles else config.reach
            near = np.linalg.norm(target - hand) <= reach
            if not (near or self._stalled >= config.stall_steps):
                break
            self._stalled = 0
            self._gripper = config.grip_effort if self._closed(effort) else min(effort, 0.0)
            if toggles:
                self._hold = config.grip_wait
            self.index += 1
        current = self.waypoints[min(self.index, last)]
        target = self._target(min(self.index, last))
        if self._hold > 0:
            self._hold -= 1
            delta = np.zeros(3)
        else:
            delta = np.clip(config.gain * (target - hand), -1.0, 1.0)
        action = np.append(delta, self._gripper)[None]
        replan = self.index > last and not self._hold
        return ActionChunk(action, config.dt, self.action_space, num_execute=1, replan=replan,
                           info={"goal_index": min(self.index, last), "progress": self.index,
                                 "target": target, "effort": current[3]})
