"""AVDC's Meta-World policy: plan -> optical flow -> rigid object motion -> 3D subgoals -> control.

Per plan: flow between consecutive frames, the grasp point and object points from the object
mask and depth, one rigid transform per flow, subgoals = the grasp point carried by the
transforms. Per step: proportional end-effector control towards the current target (hover,
descend, close the gripper, then visit the subgoals). The hand stalling for `plan_timeout`
steps asks for a new plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dts_planner.predictors.base import (
    METAWORLD_ACTION_SPACE, METAWORLD_DT, ActionChunk, PlanWatcher, PredictorObservation)
from dts_planner.predictors.camera import back_project, projection_matrix, sample_bilinear
from dts_planner.predictors.grasp import grasp_point, sample_mask_pixels
from dts_planner.predictors.optical_flow import plan_flows
from dts_planner.predictors.rigid_transform import (
    TrackingOptions, apply_transform, track_rigid_motion)


@dataclass
class FlowPolicyConfig:
    """Parameters of the flow policy (AVDC's values; lengths in metres).

    mode: "grasp" or "push" to force one, None to choose it from the first plan of an episode.
    """

    flow_method: str = "dis"
    flow_upscale: int = 4
    num_samples: int = 500
    grasp_radius_px: float = 5.0
    tracking: TrackingOptions = field(default_factory=TrackingOptions)
    mode: str | None = None
    grasp_mode_min_dz: float = 0.1
    gain: float = 20.0
    grip_effort: float = 0.8
    hover_height: float = 0.2
    xy_tolerance: float = 0.02
    z_tolerance: float = 0.04
    close_height: float = 0.08
    grasp_precision: float = 0.04
    push_precision: float = 0.12
    push_lower: float = 0.03
    push_backoff: float = 0.08
    push_direction_min: float = 0.1
    stall_distance: float = 0.001
    plan_timeout: int = 15
    dt: float = METAWORLD_DT
    seed: int = 0


def chain_subgoals(grasp: np.ndarray, transforms: list[np.ndarray]) -> np.ndarray:
    """Subgoals (T + 1, 3): the grasp point (3,) carried by each of T transforms in turn."""
    subgoals = [grasp]
    for transform in transforms:
        subgoals.append(apply_transform(transform, subgoals[-1][None])[0])
    return np.stack(subgoals)


def choose_mode(subgoals: np.ndarray, min_dz: float = 0.1) -> str:
    """Return "grasp" if the object moves over min_dz in z between inner subgoals, else "push"."""
    inner_z = subgoals[1:-1, 2]
    if len(inner_z) >= 2 and np.abs(np.diff(inner_z)).max() > min_dz:
        return "grasp"
    return "push"


def push_start(grasp: np.ndarray, subgoals: np.ndarray, backoff: float,
               min_distance: float) -> np.ndarray:
    """Grasp point moved `backoff` m back (in xy) against the push direction.

    The direction points to the first subgoal farther than min_distance in xy (or the last).
    """
    offsets = subgoals[:, :2] - grasp[:2]
    norms = np.linalg.norm(offsets, axis=1)
    far = np.nonzero(norms > min_distance)[0]
    index = far[0] if len(far) else len(offsets) - 1
    start = grasp.copy()
    if norms[index] > 1e-9:
        start[:2] -= offsets[index] / norms[index] * backoff
    return start


class FlowManipulationPolicy:
    """ActionPredictor: AVDC's closed-loop optical-flow policy for Meta-World.

    Returns one action per call (horizon 1); call it every step with the current plan.
    """

    action_space = METAWORLD_ACTION_SPACE

    def __init__(self, config: FlowPolicyConfig | None = None) -> None:
        """Create the policy; call `reset` before each episode."""
        self.config = config or FlowPolicyConfig()
        self._plans = PlanWatcher()
        self.reset()

    def reset(self, seed: int | None = None) -> None:
        """Forget the plan, the mode and the grasp state; re-seed (None: `config.seed`)."""
        self._plans.reset()
        self._rng = np.random.default_rng(self.config.seed if seed is None else seed)
        self.mode: str | None = self.config.mode
        self.grasp = np.zeros(3)
        self.subgoals = np.zeros((1, 3))
        self.grasped = False
        self._countdown = self.config.plan_timeout
        self._last_hand = np.zeros(3)

    def follow_plan(self, observation: PredictorObservation, plan_frames: np.ndarray) -> None:
        """Compute the grasp point, subgoals and mode of a new plan (F, H, W, 3) uint8."""
        config = self.config
        depth = np.asarray(observation.depth, dtype=np.float64)
        projection = projection_matrix(observation.intrinsics, observation.cam_to_world)
        flows = plan_flows(observation.rgb, plan_frames, depth.shape, config.flow_method,
                           config.flow_upscale)
        pixels = sample_mask_pixels(observation.object_mask, config.num_samples, self._rng)
        points = back_project(pixels, sample_bilinear(depth, pixels), projection)
        grasp = grasp_point(pixels, depth, projection, config.grasp_radius_px)
        transforms = track_rigid_motion(pixels, points, flows, projection, config.tracking,
                                        self._rng)
        subgoals = chain_subgoals(grasp, transforms)
        first_plan = self.mode is None
        if first_plan:
            self.mode = choose_mode(subgoals, config.grasp_mode_min_dz)
        if self.mode == "push":
            subgoals = subgoals - np.array([0.0, 0.0, config.push_lower])
            grasp = push_start(grasp, subgoals, config.push_backoff, config.push_direction_min)
        if first_plan or self.mode == "push":
            self.grasped = False
        self.grasp, self.subgoals = grasp, subgoals
        self._countdown = config.plan_timeout

    def target(self, hand: np.ndarray) -> np.ndarray:
        """Where the hand should go now (3,) m; advances the subgoal and grasp state."""
        config = self.config
        if not self.grasped:
            if np.linalg.norm(hand[:2] - self.grasp[:2]) > config.xy_tolerance:
                return self.grasp + np.array([0.0, 0.0, config.hover_height])
            if abs(hand[2] - self.grasp[2]) > config.z_tolerance:
                return self.grasp
            self.grasped = True
            return self.grasp
        precision = config.push_precision if self.mode == "push" else config.grasp_precision
        if np.linalg.norm(hand - self.subgoals[0]) <= precision and len(self.subgoals) > 1:
            self.subgoals = self.subgoals[1:]
        return self.subgoals[0]

    def gripper(self, hand: np.ndarray) -> float:
        """Gripper effort: closed when grasped, pushing or about to grasp; open otherwise."""
        near = abs(hand[2] - self.grasp[2]) < self.config.close_height
        closed = self.grasped or self.mode == "push" or near
        return self.config.grip_effort if closed else -self.config.grip_effort

    def predict(self, observation: PredictorObservation,
                plan_frames: np.ndarray) -> ActionChunk:
        """One action (1, 4): clip(gain * (target - hand)) and gripper effort."""
        if self._plans.is_new(plan_frames):
            self.follow_plan(observation, plan_frames)
        hand = np.asarray(observation.hand_pos, dtype=np.float64)
        if np.linalg.norm(hand - self._last_hand) < self.config.stall_distance:
            self._countdown -= 1
        self._last_hand = hand
        target = self.target(hand)
        delta = np.clip(self.config.gain * (target - hand), -1.0, 1.0)
        action = np.append(delta, self.gripper(hand))[None]
        return ActionChunk(action, self.config.dt, self.action_space, num_execute=1,
                           replan=self._countdown <= 0,
                           info={"mode": self.mode, "target": target,
                                 "subgoals_left": len(self.subgoals)})
