"""Object points and the grasp point from a segmentation mask and metric depth (AVDC)."""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist

from dts_planner.predictors.camera import back_project, sample_bilinear


def sample_mask_pixels(mask: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Pixels (count, 2) as (u, v) drawn from the mask (H, W) with +-0.5 px jitter.

    An empty mask falls back to the whole image, as AVDC does.
    """
    rows, cols = np.nonzero(mask)
    if len(rows) == 0:
        rows, cols = np.nonzero(np.ones_like(mask, dtype=bool))
    index = rng.integers(0, len(rows), size=count)
    pixels = np.stack([cols[index], rows[index]], axis=1).astype(np.float64)
    return pixels + rng.uniform(-0.5, 0.5, size=pixels.shape)


def grasp_point(pixels: np.ndarray, depth: np.ndarray, projection: np.ndarray,
                radius: float = 5.0) -> np.ndarray:
    """3D grasp point (3,) for sampled object pixels (N, 2), depth (H, W) m, projection (3, 4).

    The pixel with the smallest summed distance to the others (the medoid), at the median
    depth of the samples within `radius` px of it.
    """
    distances = cdist(pixels, pixels)
    centre = pixels[np.argmin(distances.sum(axis=1))]
    neighbours = pixels[np.linalg.norm(pixels - centre, axis=1) < radius]
    centre_depth = np.median(sample_bilinear(depth, neighbours))
    return back_project(centre[None], np.array([centre_depth]), projection)[0]
