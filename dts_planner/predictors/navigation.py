"""AVDC's iTHOR rule for mobile bases: camera motion from flow -> Done / Rotate / MoveAhead.

The scene's rigid motion in the camera frame is estimated per flow from the moving pixels; the
point one metre ahead, moved by that transform, tells how the camera turned.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dts_planner.predictors.base import (
    NAVIGATION_ACTION_SPACE, NAVIGATION_LABELS, ActionChunk, PredictorObservation)
from dts_planner.predictors.camera import back_project, projection_matrix, sample_bilinear
from dts_planner.predictors.grasp import sample_mask_pixels
from dts_planner.predictors.optical_flow import plan_flows
from dts_planner.predictors.rigid_transform import (
    TrackingOptions, apply_transform, track_rigid_motion)


def _navigation_tracking() -> TrackingOptions:
    """Return AVDC's navigation tracking: no RANSAC, drop points within 4 px of the border."""
    return TrackingOptions(ransac_threshold=None, border_margin=4.0, min_points=100,
                           max_step=None)


@dataclass
class NavigationPolicyConfig:
    """Parameters of the navigation rule (AVDC's iTHOR values).

    moving_threshold: px of flow for a pixel to count as moving; turn_threshold: metres of
    sideways motion of the forward point that means a rotation; done_tolerance: metres.
    """

    flow_method: str = "dis"
    flow_upscale: int = 4
    num_samples: int = 1000
    moving_threshold: float = 1.0
    turn_threshold: float = 0.2
    done_tolerance: float = 1e-3
    tracking: TrackingOptions = field(default_factory=_navigation_tracking)
    dt: float = 1.0
    seed: int = 0


def transform_to_action(transform: np.ndarray, turn_threshold: float = 0.2,
                        done_tolerance: float = 1e-3) -> str:
    """Label of the camera motion (4, 4) from where it moves the point (0, 0, 1) (x right)."""
    forward = apply_transform(transform, np.array([[0.0, 0.0, 1.0]]))[0]
    if np.allclose(forward, [0.0, 0.0, 1.0], atol=done_tolerance):
        return "Done"
    if forward[0] > turn_threshold:
        return "RotateLeft"
    if forward[0] < -turn_threshold:
        return "RotateRight"
    return "MoveAhead"


def transforms_to_actions(transforms: list[np.ndarray], turn_threshold: float = 0.2,
                          done_tolerance: float = 1e-3) -> list[str]:
    """Labels for consecutive transforms, stopping after the first "Done"."""
    actions = []
    for transform in transforms:
        actions.append(transform_to_action(transform, turn_threshold, done_tolerance))
        if actions[-1] == "Done":
            break
    return actions


class FlowNavigationPolicy:
    """ActionPredictor: one discrete action per plan flow; execute them all, then replan."""

    action_space = NAVIGATION_ACTION_SPACE

    def __init__(self, config: NavigationPolicyConfig | None = None) -> None:
        """Create the policy."""
        self.config = config or NavigationPolicyConfig()
        self.reset()

    def reset(self, seed: int | None = None) -> None:
        """Re-seed the point sampling (None: `config.seed`); the policy keeps no plan."""
        self._rng = np.random.default_rng(self.config.seed if seed is None else seed)

    def camera_motion(self, observation: PredictorObservation,
                      plan_frames: np.ndarray) -> list[np.ndarray]:
        """Rigid transforms (4, 4) of the scene in the camera frame, one per plan flow."""
        config = self.config
        depth = np.asarray(observation.depth, dtype=np.float64)
        projection = projection_matrix(observation.intrinsics)
        flows = plan_flows(observation.rgb, plan_frames, depth.shape, config.flow_method,
                           config.flow_upscale)
        moving = np.linalg.norm(flows[0], axis=-1) > config.moving_threshold
        pixels = sample_mask_pixels(moving, config.num_samples, self._rng)
        points = back_project(pixels, sample_bilinear(depth, pixels), projection)
        return track_rigid_motion(pixels, points, flows, projection, config.tracking, self._rng)

    def predict(self, observation: PredictorObservation,
                plan_frames: np.ndarray) -> ActionChunk:
        """Actions (n, 1) as indices into NAVIGATION_LABELS, n <= F; always asks to replan."""
        labels = transforms_to_actions(self.camera_motion(observation, plan_frames),
                                       self.config.turn_threshold, self.config.done_tolerance)
        data = np.array([[NAVIGATION_LABELS.index(label)] for label in labels],
                        dtype=np.float32).reshape(-1, 1)
        return ActionChunk(data, self.config.dt, self.action_space, num_execute=len(labels),
                           replan=True, info={"labels": labels})
