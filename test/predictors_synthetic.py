"""Synthetic scenes for the predictor tests: textures and a top-down camera."""

import cv2
import numpy as np
from scipy.spatial.transform import Rotation


def intrinsics(focal: float, size: int = 64) -> np.ndarray:
    """Pinhole K (3, 3) with the principal point at the image centre."""
    centre = (size - 1) / 2
    return np.array([[focal, 0.0, centre], [0.0, focal, centre], [0.0, 0.0, 1.0]])


def texture(height: int, width: int, seed: int) -> np.ndarray:
    """Make a multi-scale random RGB texture of that size, uint8, features of 2 to 16 px."""
    rng = np.random.default_rng(seed)
    out = np.zeros((height, width, 3))
    for scale in (2, 4, 8, 16):
        noise = rng.uniform(0, 255, (height // scale + 1, width // scale + 1, 3))
        out += cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC) / 4
    return np.clip(out, 0, 255).astype(np.uint8)


def look_down_pose(height: float = 1.0) -> np.ndarray:
    """Camera `height` m above the world origin looking down: image u = world x, v = -world y."""
    pose = np.eye(4)
    pose[:3, :3] = Rotation.from_euler("x", 180, degrees=True).as_matrix()
    pose[:3, 3] = [0.0, 0.0, height]
    return pose
