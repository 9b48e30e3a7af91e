"""Rigid motion of a point set from optical flow (AVDC's RANSAC + 6-DoF reprojection fit).

Transforms are 4x4 matrices acting on points in the frame of the projection matrix (the world
frame for manipulation, the camera frame for navigation). Pose parameters are
(x, y, z, roll, pitch, yaw) with R = Rx(roll) Ry(pitch) Rz(yaw), as in AVDC.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.optimize import least_squares

from dts_planner.predictors.camera import inside_image, project, sample_bilinear


def pose_matrix(params: np.ndarray) -> np.ndarray:
    """Homogeneous transform (4, 4) from (x, y, z, roll, pitch, yaw) in metres and radians."""
    (cr, cp, cy), (sr, sp, sy) = np.cos(params[3:6]), np.sin(params[3:6])
    return np.array([
        [cp * cy, -cp * sy, sp, params[0]],
        [cr * sy + sr * sp * cy, cr * cy - sr * sp * sy, -sr * cp, params[1]],
        [sr * sy - cr * sp * cy, sr * cy + cr * sp * sy, cr * cp, params[2]],
        [0.0, 0.0, 0.0, 1.0]])


def apply_transform(transform: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Points (N, 3) moved by a (4, 4) transform."""
    return points @ transform[:3, :3].T + transform[:3, 3]


def similarity_inliers(source_uv: np.ndarray, target_uv: np.ndarray, threshold: float = 0.5,
                       iterations: int = 100) -> np.ndarray:
    """Inlier mask (N,) of the RANSAC 2D similarity transform mapping source to target pixels."""
    if len(source_uv) < 3:
        return np.ones(len(source_uv), dtype=bool)
    _, inliers = cv2.estimateAffinePartial2D(
        source_uv.astype(np.float32), target_uv.astype(np.float32), method=cv2.RANSAC,
        ransacReprojThreshold=threshold, maxIters=iterations)
    if inliers is None or not inliers.any():
        return np.ones(len(source_uv), dtype=bool)
    return inliers[:, 0].astype(bool)


def fit_rigid_transform(points: np.ndarray, target_uv: np.ndarray, projection: np.ndarray,
                        rng: np.random.Generator | None = None, restarts: int = 4,
                        tolerance: float = 0.25,
                        max_translation: float = 1.0) -> tuple[np.ndarray, float]:
    """6-DoF transform moving points (N, 3) onto pixels (N, 2) under projection (3, 4).

    Least squares (Levenberg-Marquardt) on the reprojection error, started from the identity;
    if the mean squared error (px^2) stays >= tolerance, `restarts` standard-normal starts are
    tried and the best plausible one kept: all points in front of the camera and a translation
    under max_translation m (AVDC penalises translations over 1 m and restarts 50 times below
    1e-3 px^2 with GMFlow; OpenCV flow is noisier, hence 0.25 px^2).
    Returns (transform (4, 4), mean squared reprojection error px^2).
    """
    def residuals(params: np.ndarray) -> np.ndarray:
        return (project(apply_transform(pose_matrix(params), points), projection)
                - target_uv).ravel()

    def plausible(params: np.ndarray) -> bool:
        moved = apply_transform(pose_matrix(params), points)
        in_front = np.all(moved @ projection[2, :3] + projection[2, 3] > 0)
        return bool(in_front and np.linalg.norm(params[:3]) <= max_translation)

    best = least_squares(residuals, np.zeros(6), method="lm")
    rng = rng or np.random.default_rng(0)
    for _ in range(restarts if 2 * best.cost / best.fun.size >= tolerance else 0):
        candidate = least_squares(residuals, rng.standard_normal(6), method="lm")
        if candidate.cost < best.cost and plausible(candidate.x):
            best = candidate
    return pose_matrix(best.x), float(2 * best.cost / best.fun.size)


@dataclass
class TrackingOptions:
    """How points are followed through the flows.

    ransac_threshold: px, keep only inliers of a 2D similarity per flow (None: no RANSAC).
    border_margin: px, drop points this close to the border (None: clamp them into the image).
    min_points: stop tracking when fewer points remain.
    max_step: m, stop tracking when a transform moves the points' centroid farther than this
    (None: no limit); in Meta-World a plan frame spans about 10 steps of at most 1 cm, so a
    larger jump means the flow followed something else (usually the gripper occluding the
    object).
    restarts, tolerance: see `fit_rigid_transform`.
    """

    ransac_threshold: float | None = 0.5
    ransac_iterations: int = 100
    border_margin: float | None = None
    min_points: int = 3
    max_step: float | None = 0.1
    restarts: int = 4
    tolerance: float = 0.25


def track_rigid_motion(points_uv: np.ndarray, points: np.ndarray, flows: np.ndarray,
                       projection: np.ndarray, options: TrackingOptions,
                       rng: np.random.Generator | None = None) -> list[np.ndarray]:
    """One rigid transform (4, 4) per flow that carries the points along the flows.

    points_uv (N, 2) pixels and points (N, 3) their 3D positions; flows (F, H, W, 2). Returns
    up to F transforms (fewer if the tracked set falls below `options.min_points` or jumps
    farther than `options.max_step`).
    """
    size = flows.shape[1:3]
    transforms = []
    for flow in flows:
        moved_uv = points_uv + sample_bilinear(flow, points_uv)
        if options.border_margin is None:
            moved_uv = np.clip(moved_uv, 0, np.array(size[::-1]) - 1)
            keep = np.ones(len(points_uv), dtype=bool)
        else:
            keep = inside_image(moved_uv, size, options.border_margin)
        if options.ransac_threshold is not None:
            keep[keep] = similarity_inliers(points_uv[keep], moved_uv[keep],
                                            options.ransac_threshold, options.ransac_iterations)
        if keep.sum() < options.min_points:
            break
        transform, _ = fit_rigid_transform(points[keep], moved_uv[keep], projection, rng,
                                           options.restarts, options.tolerance)
        moved = apply_transform(transform, points[keep])
        if (options.max_step is not None and np.linalg.norm(
                moved.mean(axis=0) - points[keep].mean(axis=0)) > options.max_step):
            break
        transforms.append(transform)
        points = moved
        points_uv = project(points, projection)
        if options.border_margin is not None:
            inside = inside_image(points_uv, size, options.border_margin)
            points, points_uv = points[inside], points_uv[inside]
            if len(points) < options.min_points:
                break
    return transforms
