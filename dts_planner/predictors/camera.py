"""Pinhole camera geometry: projection matrices, back-projection, bilinear sampling.

Pixels are (u, v) = (column, row) with the centre of pixel (0, 0) at (0, 0). Camera frames
follow OpenCV (x right, y down, z forward); depth is metres along z.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import map_coordinates


def projection_matrix(intrinsics: np.ndarray,
                      cam_to_world: np.ndarray | None = None) -> np.ndarray:
    """World-to-pixel projection P = K [R | t] (3, 4); camera frame = world frame if no pose."""
    world_to_cam = np.eye(4) if cam_to_world is None else np.linalg.inv(cam_to_world)
    return np.asarray(intrinsics, dtype=np.float64) @ world_to_cam[:3]


def project(points: np.ndarray, projection: np.ndarray) -> np.ndarray:
    """Pixel coordinates (N, 2) of points (N, 3) under a (3, 4) projection."""
    homogeneous = np.concatenate([points, np.ones((len(points), 1))], axis=1) @ projection.T
    return homogeneous[:, :2] / homogeneous[:, 2:3]


def back_project(points_uv: np.ndarray, depths: np.ndarray, projection: np.ndarray) -> np.ndarray:
    """Points (N, 3) in the projection's world frame seen at pixels (N, 2) with depths (N,) m."""
    full = np.vstack([projection, [0.0, 0.0, 0.0, 1.0]])
    scaled = np.concatenate([points_uv * depths[:, None], depths[:, None],
                             np.ones((len(depths), 1))], axis=1)
    return (np.linalg.solve(full, scaled.T).T)[:, :3]


def sample_bilinear(image: np.ndarray, points_uv: np.ndarray) -> np.ndarray:
    """Bilinear samples (N,) or (N, C) of image (H, W) or (H, W, C) at pixels (N, 2), clamped."""
    height, width = image.shape[:2]
    u = np.clip(points_uv[:, 0], 0, width - 1)
    v = np.clip(points_uv[:, 1], 0, height - 1)
    if image.ndim == 2:
        return map_coordinates(image, [v, u], order=1)
    return np.stack([map_coordinates(image[..., c], [v, u], order=1)
                     for c in range(image.shape[2])], axis=1)


def inside_image(points_uv: np.ndarray, size: tuple[int, int], margin: float = 0.0) -> np.ndarray:
    """Mask (N,) of pixels at least `margin` px inside an image of size (H, W)."""
    height, width = size
    u, v = points_uv[:, 0], points_uv[:, 1]
    return (u >= margin) & (u < width - margin) & (v >= margin) & (v < height - margin)
