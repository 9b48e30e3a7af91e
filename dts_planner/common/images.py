"""Image helpers shared by the samplers, benches, evaluations and the demo (ROS-free).

Frames are uint8 RGB (N, H, W, 3) numpy arrays unless a function says otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw
import torch
from torch import Tensor


def psnr(a: Tensor | np.ndarray, b: Tensor | np.ndarray, peak: float = 1.0,
         dim: int | tuple[int, ...] | None = None, mask: Tensor | np.ndarray | None = None,
         min_mse: float = 0.0) -> Tensor:
    """PSNR in dB, 10 log10(peak^2 / mse), of ``a`` against ``b`` (same shape).

    ``peak``: the signal's peak-to-peak range (1 for [0, 1], 2 for [-1, 1], 255 for uint8).
    The mean squared error is over ``dim`` (all elements when None), or over the leading
    positions where ``mask`` is True (an empty mask counts as mse 0); it is clamped below at
    ``min_mse`` (0: identical inputs give +inf). Integer inputs are compared in float64.
    """
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    dtype = (torch.promote_types(a.dtype, torch.float32) if a.is_floating_point()
             else torch.float64)
    error = (a.to(dtype) - b.to(dtype)).pow(2)
    if mask is not None:
        error = error[torch.as_tensor(mask, dtype=torch.bool)]
        mse = error.mean() if error.numel() else error.new_zeros(())
    else:
        mse = error.mean() if dim is None else error.mean(dim=dim)
    return 10.0 * torch.log10(peak ** 2 / mse.clamp(min=min_mse))


def upscale(frames: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour upscaling of (..., H, W, 3) frames by an integer ``scale``."""
    return frames.repeat(scale, axis=-3).repeat(scale, axis=-2) if scale > 1 else frames


def tile_frames(frames: np.ndarray, columns: int = 0) -> np.ndarray:
    """Tile (N, H, W, 3) frames into one (rows*H, columns*W, 3) image, row-major, black pad.

    columns: frames per row; 0 puts all frames in one row.
    """
    count, height, width, _ = frames.shape
    columns = columns or count
    rows = -(-count // columns)
    canvas = np.zeros((rows * height, columns * width, 3), np.uint8)
    for i, frame in enumerate(frames):
        r, c = divmod(i, columns)
        canvas[r * height:(r + 1) * height, c * width:(c + 1) * width] = frame
    return canvas


def write_gif(frames: Sequence[np.ndarray] | np.ndarray, path: str | Path, frame_ms: int = 250,
              scale: int = 1) -> None:
    """Write (N, H, W, 3) frames as a looping GIF, ``frame_ms`` per frame, ``scale``x upscaled."""
    images = [Image.fromarray(upscale(np.asarray(frame), scale)) for frame in frames]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=frame_ms, loop=0)


def write_strip(frames: np.ndarray, path: str | Path, scale: int = 1, columns: int = 0) -> None:
    """Write (N, H, W, 3) frames side by side (``columns`` per row, 0 = one row) as a PNG."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(tile_frames(upscale(np.asarray(frames), scale), columns)).save(path)


def labelled_grid(rows: Sequence[np.ndarray], labels: Sequence[str], scale: int = 2,
                  label_width: int = 72) -> Image.Image:
    """Image of frame rows (each (N, H, W, 3), same N), ``scale``x, a text label left of each."""
    grid = np.concatenate([tile_frames(np.asarray(row)) for row in rows], axis=0)
    frames = Image.fromarray(upscale(grid, scale))
    image = Image.new("RGB", (frames.width + label_width, frames.height), "white")
    image.paste(frames, (label_width, 0))
    draw = ImageDraw.Draw(image)
    row_height = frames.height // len(rows)
    for row, label in enumerate(labels):
        draw.text((4, row * row_height + row_height // 2 - 6), label, fill="black")
    return image
