"""The optical-flow policies on synthetic scenes with known object and camera motion."""

import cv2
import numpy as np
import pytest

from predictors_synthetic import intrinsics, look_down_pose, texture
from dts_planner.predictors.base import (
    METAWORLD_ACTION_SPACE, NAVIGATION_LABELS, PredictorObservation)
from dts_planner.predictors.manipulation_flow_policy import (
    FlowManipulationPolicy, FlowPolicyConfig, choose_mode, push_start)
from dts_planner.predictors.navigation import (
    FlowNavigationPolicy, transform_to_action, transforms_to_actions)
from dts_planner.predictors.rigid_transform import pose_matrix

SIZE = 64
FOCAL = 60.0
K = intrinsics(FOCAL)
CAMERA_HEIGHT = 1.0
OBJECT_HEIGHT = 0.05


def _tabletop(shift_px: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render the table with a 16 px block moved `shift_px` px right: rgb, mask, depth."""
    rgb = texture(SIZE, SIZE, 0)
    block = texture(16, 16, 1)
    mask = np.zeros((SIZE, SIZE), dtype=bool)
    left = 16 + shift_px
    rgb[24:40, left:left + 16] = block
    mask[24:40, left:left + 16] = True
    return rgb, mask, np.where(mask, CAMERA_HEIGHT - OBJECT_HEIGHT, CAMERA_HEIGHT)


def _tabletop_observation(hand: np.ndarray) -> PredictorObservation:
    rgb, mask, depth = _tabletop(0)
    return PredictorObservation(rgb, depth.astype(np.float32), mask, hand, K, look_down_pose())


PUSH_STEP_PX = 2
PLAN = np.stack([_tabletop(PUSH_STEP_PX * (i + 1))[0] for i in range(7)])
PUSH_STEP_M = PUSH_STEP_PX * (CAMERA_HEIGHT - OBJECT_HEIGHT) / FOCAL


def test_push_plan_gives_subgoals_along_the_motion():
    policy = FlowManipulationPolicy()
    observation = _tabletop_observation(np.array([0.0, 0.0, 0.4]))
    chunk = policy.predict(observation, PLAN)
    assert policy.mode == "push"
    steps = np.diff(policy.subgoals, axis=0)
    assert len(steps) == 7
    # each flow frame moves the block PUSH_STEP_M along world x, within 5 mm
    np.testing.assert_allclose(steps, np.tile([PUSH_STEP_M, 0.0, 0.0], (7, 1)), atol=5e-3)
    # the pusher starts 8 cm behind the block centre, and hovers 20 cm above it first
    block_centre_x = (16 + 7.5 - 31.5) * (CAMERA_HEIGHT - OBJECT_HEIGHT) / FOCAL
    assert policy.grasp[0] == pytest.approx(block_centre_x - 0.08, abs=0.016)  # 1 px
    expected = np.clip(20 * (policy.grasp + [0, 0, 0.2] - observation.hand_pos), -1, 1)
    np.testing.assert_allclose(chunk.data[0, :3], expected, atol=1e-6)
    assert chunk.data[0, 3] == pytest.approx(0.8)
    assert METAWORLD_ACTION_SPACE.contains(chunk.data) and chunk.num_execute == 1


def test_stalled_hand_asks_for_a_new_plan_after_the_timeout():
    policy = FlowManipulationPolicy(FlowPolicyConfig(plan_timeout=15))
    observation = _tabletop_observation(np.array([0.0, 0.0, 0.4]))
    replans = [policy.predict(observation, PLAN).replan for _ in range(16)]
    assert replans == [False] * 15 + [True]


def test_grasp_sequence_hover_descend_close_then_subgoals():
    policy = FlowManipulationPolicy(FlowPolicyConfig(mode="grasp"))
    policy.grasp = np.array([0.1, 0.2, 0.05])
    policy.subgoals = np.array([[0.1, 0.2, 0.05], [0.1, 0.2, 0.25], [0.2, 0.2, 0.25]])
    assert policy.target(np.array([0.0, 0.0, 0.3])) == pytest.approx([0.1, 0.2, 0.25])
    assert policy.gripper(np.array([0.0, 0.0, 0.3])) == pytest.approx(-0.8)
    assert policy.target(np.array([0.1, 0.2, 0.25])) == pytest.approx([0.1, 0.2, 0.05])
    assert policy.target(np.array([0.1, 0.2, 0.06])) == pytest.approx([0.1, 0.2, 0.05])
    assert policy.grasped and policy.gripper(np.array([0.1, 0.2, 0.06])) == pytest.approx(0.8)
    assert policy.target(np.array([0.1, 0.2, 0.06])) == pytest.approx([0.1, 0.2, 0.25])
    assert policy.target(np.array([0.1, 0.2, 0.24])) == pytest.approx([0.2, 0.2, 0.25])


def test_mode_and_push_start():
    flat = np.array([[0, 0, 0.0], [0.05, 0, 0.0], [0.15, 0, 0.01], [0.2, 0, 0.0], [0.3, 0, 0]])
    lifted = flat + np.array([[0, 0, 0], [0, 0, 0], [0, 0, 0.15], [0, 0, 0.2], [0, 0, 0.2]])
    assert choose_mode(flat) == "push" and choose_mode(lifted) == "grasp"
    start = push_start(np.zeros(3), flat, backoff=0.08, min_distance=0.1)
    np.testing.assert_allclose(start, [-0.08, 0.0, 0.0], atol=1e-12)


def _rotation_about_y(degrees: float) -> np.ndarray:
    return pose_matrix(np.array([0.0, 0.0, 0.0, 0.0, np.radians(degrees), 0.0]))


@pytest.mark.parametrize("transform, label", [
    (np.eye(4), "Done"),
    (_rotation_about_y(45.0), "RotateLeft"),      # x right: the forward point swings to +x
    (_rotation_about_y(-45.0), "RotateRight"),
    (pose_matrix(np.array([0.05, 0.0, -0.25, 0.0, 0.0, 0.0])), "MoveAhead"),
])
def test_navigation_rule(transform, label):
    assert transform_to_action(transform) == label


def test_navigation_actions_stop_after_done():
    transforms = [_rotation_about_y(30.0), np.eye(4), _rotation_about_y(-30.0)]
    assert transforms_to_actions(transforms) == ["RotateLeft", "Done"]


NAV_FOCAL = 32.0
NAV_K = intrinsics(NAV_FOCAL)


def _turned_view(degrees: float, zoom: float = 1.0) -> np.ndarray:
    """View of a textured scene after the camera turns left by `degrees`, zoomed by `zoom`.

    A pure rotation R of the scene about the camera is the homography K R K^-1 (any depth).
    """
    canvas = texture(3 * SIZE, 3 * SIZE, 5)
    canvas_k = intrinsics(NAV_FOCAL, 3 * SIZE)
    scene = pose_matrix(np.array([0.0, 0.0, 0.0, 0.0, np.radians(degrees), 0.0]))[:3, :3]
    view_k = NAV_K @ np.diag([zoom, zoom, 1.0])
    homography = view_k @ scene @ np.linalg.inv(canvas_k)
    return cv2.warpPerspective(canvas, homography, (SIZE, SIZE), flags=cv2.INTER_CUBIC)


def _navigate(frames: list[np.ndarray]) -> list[str]:
    observation = PredictorObservation(
        _turned_view(0.0), np.full((SIZE, SIZE), 2.0, np.float32), np.zeros((SIZE, SIZE), bool),
        np.zeros(3), NAV_K, np.eye(4))
    chunk = FlowNavigationPolicy().predict(observation, np.stack(frames))
    assert chunk.replan and chunk.num_execute == chunk.horizon
    assert chunk.action_space.contains(chunk.data)
    return [NAVIGATION_LABELS[int(i)] for i in chunk.data[:, 0]]


def test_navigation_policy_turns_moves_and_stops():
    assert _navigate([_turned_view(15.0), _turned_view(30.0)]) == ["RotateLeft", "RotateLeft"]
    assert _navigate([_turned_view(-15.0)]) == ["RotateRight"]
    assert _navigate([_turned_view(0.0, zoom=1.15)]) == ["MoveAhead"]
    assert _navigate([_turned_view(0.0), _turned_view(0.0)]) == ["Done"]


@pytest.mark.parametrize("degrees", [-10.0, 10.0])
def test_navigation_recovers_camera_rotation(degrees):
    # a non-planar scene (depth 1.5-4 m) separates turning from sliding sideways
    coarse = np.random.default_rng(0).uniform(0, 1, (4, 4))
    depth = 1.5 + 2.5 * cv2.resize(coarse, (SIZE, SIZE), interpolation=cv2.INTER_CUBIC).clip(0, 1)
    observation = PredictorObservation(_turned_view(0.0), depth.astype(np.float32),
                                       np.zeros((SIZE, SIZE), bool), np.zeros(3), NAV_K,
                                       np.eye(4))
    (motion,) = FlowNavigationPolicy().camera_motion(observation, _turned_view(degrees)[None])
    np.testing.assert_allclose(motion[:3, :3], _rotation_about_y(degrees)[:3, :3], atol=5e-3)
    np.testing.assert_allclose(motion[:3, 3], 0.0, atol=0.01)  # metres
