"""Flow, camera and rigid-transform pieces on synthetic data with known motion."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from predictors_synthetic import intrinsics, look_down_pose, texture
from dts_planner.predictors.camera import back_project, project, projection_matrix
from dts_planner.predictors.grasp import grasp_point, sample_mask_pixels
from dts_planner.predictors.optical_flow import dense_flow, resize_flow
from dts_planner.predictors.rigid_transform import (
    TrackingOptions, apply_transform, fit_rigid_transform, pose_matrix, similarity_inliers,
    track_rigid_motion)

K = intrinsics(60.0)


def _analytic_flow(depth: np.ndarray, projection: np.ndarray, transform: np.ndarray) -> np.ndarray:
    """Exact flow (H, W, 2) of a rigid motion of the scene seen with depth (H, W)."""
    height, width = depth.shape
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    pixels = np.stack([u.ravel(), v.ravel()], axis=1)
    points = back_project(pixels, depth.ravel(), projection)
    moved = project(apply_transform(transform, points), projection)
    return (moved - pixels).reshape(height, width, 2)


def test_pose_matrix_is_rx_ry_rz():
    roll, pitch, yaw = 0.1, -0.2, 0.3
    rx = Rotation.from_euler("x", roll).as_matrix()
    ry = Rotation.from_euler("y", pitch).as_matrix()
    rz = Rotation.from_euler("z", yaw).as_matrix()
    matrix = pose_matrix(np.array([1.0, 2.0, 3.0, roll, pitch, yaw]))
    np.testing.assert_allclose(matrix[:3, :3], rx @ ry @ rz, atol=1e-12)
    np.testing.assert_allclose(matrix[:3, 3], [1.0, 2.0, 3.0])


def test_projection_round_trip_with_pose():
    projection = projection_matrix(K, look_down_pose())
    points = np.random.default_rng(0).uniform(-0.2, 0.2, (50, 3))
    pixels = project(points, projection)
    depths = 1.0 - points[:, 2]
    np.testing.assert_allclose(back_project(pixels, depths, projection), points, atol=1e-9)


def test_fit_rigid_transform_recovers_known_motion():
    rng = np.random.default_rng(1)
    projection = projection_matrix(K, look_down_pose())
    points = rng.uniform(-0.15, 0.15, (200, 3))
    truth = pose_matrix(np.array([0.03, -0.02, 0.05, 0.05, -0.04, 0.2]))
    target = project(apply_transform(truth, points), projection)
    transform, error = fit_rigid_transform(points, target, projection, rng)
    assert error < 1e-6
    np.testing.assert_allclose(transform, truth, atol=1e-4)


def test_similarity_inliers_reject_outliers():
    rng = np.random.default_rng(2)
    source = rng.uniform(0, 64, (100, 2))
    target = source + np.array([3.0, -1.0])
    target[:10] += rng.uniform(5, 10, (10, 2))
    inliers = similarity_inliers(source, target)
    assert not inliers[:10].any() and inliers[10:].all()


@pytest.mark.parametrize("method", ["dis", "farneback"])
def test_dense_flow_recovers_shift(method):
    image = texture(64, 64, 0)
    shifted = np.roll(image, shift=(1, 2), axis=(0, 1))
    flow = dense_flow(image, shifted, method)
    np.testing.assert_allclose(np.median(flow[16:48, 16:48].reshape(-1, 2), axis=0), [2.0, 1.0],
                               atol=0.15)


def test_resize_flow_scales_vectors():
    flow = np.tile(np.array([1.0, 2.0], dtype=np.float32), (32, 16, 1))
    resized = resize_flow(flow, (64, 64))
    assert resized.shape == (64, 64, 2)
    np.testing.assert_allclose(resized[10, 10], [4.0, 4.0], atol=1e-6)


def test_grasp_point_is_centre_of_disc():
    depth = np.full((64, 64), 0.9)
    v, u = np.mgrid[0:64, 0:64]
    mask = (u - 40) ** 2 + (v - 20) ** 2 <= 36
    projection = projection_matrix(K, look_down_pose())
    pixels = sample_mask_pixels(mask, 500, np.random.default_rng(0))
    grasp = grasp_point(pixels, depth, projection)
    expected = back_project(np.array([[40.0, 20.0]]), np.array([0.9]), projection)[0]
    np.testing.assert_allclose(grasp, expected, atol=0.9 / 60 * 1.0)  # within 1 px
    assert abs(grasp[2] - 0.1) < 1e-9


def test_tracking_recovers_motion_from_analytic_flows():
    projection = projection_matrix(K, look_down_pose())
    depth = np.full((64, 64), 0.9)
    step = pose_matrix(np.array([0.01, 0.015, 0.0, 0.0, 0.0, 0.05]))
    # the motion keeps the plane z = 0.1 m in place, so every frame sees the same flow field
    flows = np.stack([_analytic_flow(depth, projection, step)] * 3)
    rng = np.random.default_rng(3)
    pixels = rng.uniform(20, 44, (300, 2))
    points = back_project(pixels, np.full(300, 0.9), projection)
    transforms = track_rigid_motion(pixels, points, flows, projection, TrackingOptions(), rng)
    assert len(transforms) == 3
    for transform in transforms:
        np.testing.assert_allclose(transform, step, atol=2e-3)


def test_tracking_stops_at_implausible_jumps():
    projection = projection_matrix(K, look_down_pose())
    depth = np.full((64, 64), 0.9)
    jump = pose_matrix(np.array([0.15, 0.0, 0.0, 0.0, 0.0, 0.0]))  # 15 cm in one plan frame
    flows = np.stack([_analytic_flow(depth, projection, jump)])
    rng = np.random.default_rng(4)
    pixels = rng.uniform(28, 36, (100, 2))
    points = back_project(pixels, np.full(100, 0.9), projection)
    assert track_rigid_motion(pixels, points, flows, projection, TrackingOptions(), rng) == []
    unlimited = TrackingOptions(max_step=None)
    (transform,) = track_rigid_motion(pixels, points, flows, projection, unlimited, rng)
    np.testing.assert_allclose(transform[:3, 3], [0.15, 0.0, 0.0], atol=5e-3)
