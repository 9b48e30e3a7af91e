"""Image message conversion: supported encodings, padded rows, and every malformed input."""

from __future__ import annotations

import numpy as np
import pytest
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from dts_planner.ros.image_conversion import (
    check_image, depth_to_image, depth_to_metres, image_to_rgb, ImageConversionError,
    mask_to_bool, mask_to_image, rgb_to_image, with_source_frame)
from dts_planner.common.images import tile_frames

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)


def make_image(pixels: np.ndarray, encoding: str, pad: int = 0) -> Image:
    """Pack `pixels` (H, W, C) into an Image with `pad` extra bytes per row."""
    height, width = pixels.shape[:2]
    rows = pixels.reshape(height, -1).view(np.uint8)
    rows = np.hstack([rows, np.full((height, pad), 77, np.uint8)])
    msg = Image(height=height, width=width, encoding=encoding, step=rows.shape[1])
    msg.data = rows.tobytes()
    return msg


@pytest.mark.parametrize("encoding,pixels", [
    ("rgb8", RGB),
    ("bgr8", RGB[..., ::-1]),
    ("rgba8", np.dstack([RGB, np.full((5, 7), 9, np.uint8)])),
    ("bgra8", np.dstack([RGB[..., ::-1], np.full((5, 7), 9, np.uint8)])),
])
@pytest.mark.parametrize("pad", [0, 3])
def test_colour_encodings_decode_to_rgb(encoding: str, pixels: np.ndarray, pad: int) -> None:
    """Every supported colour encoding, with and without row padding, gives the same RGB."""
    out = image_to_rgb(make_image(np.ascontiguousarray(pixels), encoding, pad))
    assert out.dtype == np.uint8 and out.shape == (5, 7, 3)
    np.testing.assert_array_equal(out, RGB)


def test_mono8_is_grey_rgb() -> None:
    """mono8 repeats the grey value on all three channels."""
    grey = RGB[..., 0]
    out = image_to_rgb(make_image(grey[..., None], "mono8", pad=1))
    np.testing.assert_array_equal(out, np.repeat(grey[..., None], 3, axis=2))


@pytest.mark.parametrize("mutate,reason", [
    (lambda m: setattr(m, "encoding", "16UC1"), "unsupported_encoding"),
    (lambda m: setattr(m, "encoding", "yuv422"), "unsupported_encoding"),
    (lambda m: (setattr(m, "height", 0), setattr(m, "data", b"")), "empty_image"),
    (lambda m: setattr(m, "width", 0), "empty_image"),
    (lambda m: setattr(m, "step", 20), "bad_step"),
    (lambda m: setattr(m, "data", bytes(m.data)[:-1]), "truncated_data"),
    (lambda m: setattr(m, "data", b""), "truncated_data"),
])
def test_malformed_images_raise_with_reason(mutate, reason: str) -> None:
    """Bad encodings, sizes, steps and data raise ImageConversionError naming the reason."""
    msg = make_image(RGB, "rgb8")
    mutate(msg)
    with pytest.raises(ImageConversionError) as caught:
        image_to_rgb(msg)
    assert caught.value.reason == reason
    with pytest.raises(ImageConversionError):
        check_image(msg)


def test_round_trips_keep_header_and_values() -> None:
    """rgb/depth/mask packers invert their decoders and carry the header."""
    header = Header(frame_id="cam")
    header.stamp.sec, header.stamp.nanosec = 12, 345
    msg = rgb_to_image(RGB, header)
    assert (msg.encoding, msg.header.frame_id, msg.header.stamp.sec) == ("rgb8", "cam", 12)
    np.testing.assert_array_equal(image_to_rgb(msg), RGB)
    depth = RNG.random((5, 7)).astype(np.float32) * 3
    np.testing.assert_array_equal(depth_to_metres(depth_to_image(depth, header)), depth)
    mask = RNG.random((5, 7)) > 0.5
    np.testing.assert_array_equal(mask_to_bool(mask_to_image(mask, header)), mask)


def test_depth_16uc1_is_millimetres() -> None:
    """16UC1 depth is read as millimetres."""
    mm = np.array([[1000, 2500]], np.uint16)
    out = depth_to_metres(make_image(mm[..., None], "16UC1"))
    np.testing.assert_allclose(out, [[1.0, 2.5]])


def test_tile_frames_layout() -> None:
    """Frames are laid out row-major with black padding."""
    frames = np.stack([np.full((2, 3, 3), i, np.uint8) for i in range(1, 4)])
    assert tile_frames(frames).shape == (2, 9, 3)
    grid = tile_frames(frames, columns=2)
    assert grid.shape == (4, 6, 3)
    assert grid[0, 0, 0] == 1 and grid[0, 3, 0] == 2 and grid[2, 0, 0] == 3
    assert grid[2, 3, 0] == 0


def test_with_source_frame_prepends_the_resized_source() -> None:
    """A 4x4 uniform source becomes frame 0 at the plan's 2x2 size; the plan follows unchanged."""
    source = np.full((4, 4, 3), 200, np.uint8)
    frames = np.zeros((3, 2, 2, 3), np.uint8)
    out = with_source_frame(source, frames)
    assert out.shape == (4, 2, 2, 3)
    assert (out[0] == 200).all() and not out[1:].any()


class RecordingBridge:
    """Stands in for cv_bridge.CvBridge (a ROS package that cannot be installed here)."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def imgmsg_to_cv2(self, msg: Image, desired_encoding: str) -> np.ndarray:
        self.calls.append(("imgmsg_to_cv2", msg.encoding, desired_encoding))
        return np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.width, 3)

    def cv2_to_imgmsg(self, array: np.ndarray, encoding: str, header: Header) -> Image:
        self.calls.append(("cv2_to_imgmsg", array.shape, encoding, header.frame_id))
        return Image(header=header, height=array.shape[0], width=array.shape[1],
                     encoding=encoding, step=array.strides[0], data=array.tobytes())


def test_the_cv_bridge_path_is_used_when_cv_bridge_imports(monkeypatch) -> None:
    """With cv_bridge, conversions go through it (checked first, rgb8 asked, a copy returned)."""
    from dts_planner.ros import image_conversion
    bridge = RecordingBridge()
    monkeypatch.setattr(image_conversion, "_BRIDGE", bridge)
    assert image_conversion.uses_cv_bridge()
    msg = rgb_to_image(RGB, Header(frame_id="cam"))
    out = image_to_rgb(msg)
    np.testing.assert_array_equal(out, RGB)
    assert out.flags.writeable and out.base is None      # a copy, not a view of the message
    assert bridge.calls == [("cv2_to_imgmsg", (5, 7, 3), "rgb8", "cam"),
                            ("imgmsg_to_cv2", "rgb8", "rgb8")]
    msg.encoding = "yuv422"
    with pytest.raises(ImageConversionError, match="unsupported_encoding"):
        image_to_rgb(msg)                        # checked before the bridge sees it
    assert len(bridge.calls) == 2
    monkeypatch.setattr(image_conversion, "_BRIDGE", None)
    assert not image_conversion.uses_cv_bridge()
