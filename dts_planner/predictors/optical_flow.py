"""Dense optical flow between consecutive video frames with OpenCV (DIS or Farneback)."""

from __future__ import annotations

import cv2
import numpy as np

FLOW_METHODS = ("dis", "farneback")


def dense_flow(first: np.ndarray, second: np.ndarray, method: str = "dis",
               upscale: int = 4) -> np.ndarray:
    """Forward flow (H, W, 2) float32 px from RGB frame `first` to `second` (H, W, 3) uint8.

    flow[v, u] = (du, dv): the pixel (u, v) of `first` moves to (u + du, v + dv) in `second`.
    The frames are upsampled `upscale` times first (AVDC upsamples to 480x640 for GMFlow):
    small plan frames give DIS too few pixels per patch otherwise.
    """
    size = first.shape[:2]
    gray1, gray2 = (cv2.resize(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), None, fx=upscale,
                               fy=upscale, interpolation=cv2.INTER_CUBIC)
                    for frame in (first, second))
    if method == "dis":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        flow = dis.calc(gray1, gray2, None)
    elif method == "farneback":
        flow = cv2.calcOpticalFlowFarneback(gray1, gray2, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    else:
        raise ValueError(f"unknown flow method {method!r}; choose from {FLOW_METHODS}")
    return resize_flow(flow, size)


def resize_flow(flow: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Flow (h, w, 2) resized to size (H, W), vectors rescaled to the new pixel units."""
    height, width = size
    if flow.shape[:2] == (height, width):
        return flow
    shrink = height < flow.shape[0]
    resized = cv2.resize(flow, (width, height),
                         interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    scale = np.array([width / flow.shape[1], height / flow.shape[0]], dtype=np.float32)
    return resized * scale


def plan_flows(current_rgb: np.ndarray, plan_frames: np.ndarray, size: tuple[int, int],
               method: str = "dis", upscale: int = 4) -> np.ndarray:
    """Flows (F, H, W, 2) along [current, plan_0, ..., plan_{F-1}], at the camera size (H, W).

    current_rgb: (h0, w0, 3) uint8 observation; plan_frames: (F, h, w, 3) uint8 imagined frames.
    Flow is computed at the plan's resolution and rescaled to `size`.
    """
    plan_size = plan_frames.shape[1:3]
    current = cv2.resize(current_rgb, (plan_size[1], plan_size[0]), interpolation=cv2.INTER_AREA)
    frames = [current, *plan_frames]
    return np.stack([resize_flow(dense_flow(a, b, method, upscale), size)
                     for a, b in zip(frames[:-1], frames[1:])])
