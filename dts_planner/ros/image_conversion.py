"""sensor_msgs/Image <-> numpy conversion with input checks that never raise past the caller.

`cv_bridge` is used where it imports; otherwise a small NumPy decoder handles the encodings the
nodes support. Every input is checked first (encoding, size, `step`, data length) so that a bad
message becomes an `ImageConversionError` with a reason the node can count, never a crash.
"""

from __future__ import annotations

import cv2
import numpy as np
from sensor_msgs.msg import Image
from std_msgs.msg import Header

try:  # cv_bridge is a ROS package; absent in pip-only environments.
    from cv_bridge import CvBridge
    _BRIDGE: CvBridge | None = CvBridge()
except ImportError:
    _BRIDGE = None

#: Supported colour encodings: channels per pixel (all 8-bit).
COLOR_ENCODINGS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}
#: Supported depth encodings: bytes per pixel.
DEPTH_ENCODINGS = {"32FC1": 4, "16UC1": 2}

_TO_RGB = {
    "bgr8": cv2.COLOR_BGR2RGB,
    "rgba8": cv2.COLOR_RGBA2RGB,
    "bgra8": cv2.COLOR_BGRA2RGB,
    "mono8": cv2.COLOR_GRAY2RGB,
}


class ImageConversionError(ValueError):
    """A message that cannot be converted; `reason` is a short key for counters."""

    def __init__(self, reason: str, detail: str) -> None:
        """Store the counter key `reason` and a human-readable `detail`."""
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def uses_cv_bridge() -> bool:
    """Whether conversions go through cv_bridge (True) or the NumPy fallback (False)."""
    return _BRIDGE is not None


def check_image(msg: Image, encodings: dict[str, int] = COLOR_ENCODINGS) -> None:
    """Raise ImageConversionError unless `msg` is a well-formed image in one of `encodings`.

    `encodings` maps encoding name to bytes per pixel. Cheap (no pixel access): safe to call
    in a subscription callback.
    """
    if msg.encoding not in encodings:
        raise ImageConversionError(
            "unsupported_encoding",
            f"'{msg.encoding}' (supported: {', '.join(sorted(encodings))})")
    if msg.height == 0 or msg.width == 0:
        raise ImageConversionError("empty_image", f"{msg.width}x{msg.height}")
    row_bytes = msg.width * encodings[msg.encoding]
    if msg.step < row_bytes:
        raise ImageConversionError(
            "bad_step", f"step {msg.step} < width * bytes per pixel = {row_bytes}")
    if len(msg.data) < msg.step * msg.height:
        raise ImageConversionError(
            "truncated_data", f"{len(msg.data)} bytes < step * height = {msg.step * msg.height}")


def _pixels(msg: Image, bytes_per_pixel: int, dtype: np.dtype) -> np.ndarray:
    """View the data of a checked message as (H, W, bytes_per_pixel / itemsize), rows unpadded."""
    rows = np.frombuffer(msg.data, np.uint8, msg.step * msg.height)
    rows = rows.reshape(msg.height, msg.step)[:, :msg.width * bytes_per_pixel]
    dtype = np.dtype(dtype).newbyteorder(">" if msg.is_bigendian else "<")
    channels = bytes_per_pixel // dtype.itemsize
    return np.ascontiguousarray(rows).view(dtype).reshape(msg.height, msg.width, channels)


def image_to_rgb(msg: Image) -> np.ndarray:
    """Convert an rgb8/bgr8/rgba8/bgra8/mono8 Image to (H, W, 3) uint8 RGB (a new array)."""
    check_image(msg)
    if _BRIDGE is not None:
        return np.array(_BRIDGE.imgmsg_to_cv2(msg, desired_encoding="rgb8"))
    pixels = _pixels(msg, COLOR_ENCODINGS[msg.encoding], np.uint8)
    if msg.encoding == "rgb8":
        return pixels.copy()
    return cv2.cvtColor(pixels, _TO_RGB[msg.encoding]).reshape(msg.height, msg.width, 3)


def depth_to_metres(msg: Image) -> np.ndarray:
    """Convert a 32FC1 (m) or 16UC1 (mm) depth Image to (H, W) float32 metres."""
    check_image(msg, DEPTH_ENCODINGS)
    if msg.encoding == "32FC1":
        return _pixels(msg, 4, np.float32)[..., 0].astype(np.float32)
    return _pixels(msg, 2, np.uint16)[..., 0].astype(np.float32) / 1000.0


def mask_to_bool(msg: Image) -> np.ndarray:
    """Convert a mono8 mask Image (non-zero = inside) to (H, W) bool."""
    check_image(msg, {"mono8": 1})
    return _pixels(msg, 1, np.uint8)[..., 0] != 0


def _array_to_image(array: np.ndarray, encoding: str, header: Header) -> Image:
    """Pack a C-contiguous (H, W[, C]) array into an Image with `header`."""
    array = np.ascontiguousarray(array)
    if _BRIDGE is not None:
        return _BRIDGE.cv2_to_imgmsg(array, encoding=encoding, header=header)
    msg = Image(header=header, height=array.shape[0], width=array.shape[1], encoding=encoding,
                is_bigendian=0, step=array.strides[0])
    msg.data = array.tobytes()
    return msg


def rgb_to_image(rgb: np.ndarray, header: Header) -> Image:
    """Pack (H, W, 3) uint8 RGB into an rgb8 Image with `header`."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
    return _array_to_image(rgb, "rgb8", header)


def depth_to_image(depth_m: np.ndarray, header: Header) -> Image:
    """Pack (H, W) float metres into a 32FC1 Image with `header`."""
    return _array_to_image(np.asarray(depth_m, np.float32), "32FC1", header)


def mask_to_image(mask: np.ndarray, header: Header) -> Image:
    """Pack an (H, W) bool mask into a mono8 Image (255 inside) with `header`."""
    return _array_to_image(np.asarray(mask, bool).astype(np.uint8) * 255, "mono8", header)


def with_source_frame(source: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Prepend the source image (any size, RGB) resized to the frames' size -> (N+1, H, W, 3)."""
    height, width = frames.shape[1:3]
    first = cv2.resize(source, (width, height), interpolation=cv2.INTER_AREA)
    return np.concatenate([first[None], frames])
