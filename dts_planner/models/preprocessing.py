"""Camera image -> the model's conditioning frame (OpenCV crop and resize)."""

from __future__ import annotations

import math

import cv2
import numpy as np

from dts_planner.models.configs import Preprocess


def _center_crop(image: np.ndarray, height: int, width: int) -> np.ndarray:
    top, left = (image.shape[0] - height) // 2, (image.shape[1] - width) // 2
    return image[top:top + height, left:left + width]


def _resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    if image.shape[:2] == (height, width):
        return image
    shrink = height * width < image.shape[0] * image.shape[1]
    return cv2.resize(image, (width, height),
                      interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def prepare_image(image: np.ndarray, size: tuple[int, int],
                  mode: Preprocess = "crop_resize") -> np.ndarray:
    """Turn an RGB image (H, W, 3) uint8 of any size into the model's (h, w, 3) uint8 frame.

    ``crop_resize``: the largest centred crop with the aspect ratio of ``size`` (h, w), resized.
    ``center_crop``: a centred ``size`` crop at the native scale (AVDC Meta-World), enlarging
    the image first only if it is smaller than ``size``. ``resize``: a plain resize.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError("expected an RGB image of shape (H, W, 3) and dtype uint8, got "
                         f"shape {image.shape} dtype {image.dtype}")
    height, width = size
    if mode == "resize":
        return np.ascontiguousarray(_resize(image, height, width))
    if mode == "center_crop":
        scale = max(1.0, height / image.shape[0], width / image.shape[1])
        enlarged = _resize(image, math.ceil(image.shape[0] * scale),
                           math.ceil(image.shape[1] * scale))
        return np.ascontiguousarray(_center_crop(enlarged, height, width))
    if mode == "crop_resize":
        scale = min(image.shape[0] / height, image.shape[1] / width)
        crop = _center_crop(image, round(height * scale), round(width * scale))
        return np.ascontiguousarray(_resize(crop, height, width))
    raise ValueError(f"unknown preprocessing mode {mode!r}")


def prepare_frames(frames: np.ndarray, size: tuple[int, int],
                   mode: Preprocess = "crop_resize") -> np.ndarray:
    """``prepare_image`` for each of T RGB frames (T, H, W, 3) uint8 -> (T, h, w, 3) uint8."""
    return np.stack([prepare_image(frame, size, mode) for frame in frames])
