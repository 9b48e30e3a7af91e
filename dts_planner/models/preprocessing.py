"""Camera image -> the model's frame (OpenCV crop and resize); uint8 pixels <-> model tensors."""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
from torch import Tensor

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


def frames_to_model_space(frames: Tensor) -> Tensor:
    """uint8 RGB frames (B, F, H, W, 3) -> model-space video (B, F*3, H, W) float in [-1, 1]."""
    video = frames.permute(0, 1, 4, 2, 3).flatten(1, 2).float()
    return video / 127.5 - 1.0


def image_to_cond(images: Tensor | np.ndarray) -> Tensor:
    """uint8 RGB images (B, H, W, 3) -> float (B, 3, H, W) in [0, 1] (tensor or numpy input).

    The one uint8 HWC -> float CHW converter (conditioning frames, policy inputs).
    """
    return torch.as_tensor(images).permute(0, 3, 1, 2).float() / 255.0


def model_space_to_uint8(sample: Tensor) -> np.ndarray:
    """Model-space video (B, F*3, H, W) -> uint8 RGB (B, F, H, W, 3), clamped to [-1, 1] first."""
    batch, _, height, width = sample.shape
    pixels = ((sample.detach().float().clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)
    return pixels.view(batch, -1, 3, height, width).permute(0, 1, 3, 4, 2).cpu().numpy()
