"""Assemble predictor observations from camera-side topics that share one stamp.

Per-frame topics (image, depth, object mask, hand position) are matched by exact header stamp,
as an RGB-D camera and a robot state publisher driven by one clock produce them; slow-changing
ones (camera_info, camera_pose) use their latest message.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
import threading
from typing import Any

import numpy as np

_PENDING_STAMPS = 8


@dataclass
class StampedObservation:
    """A `PredictorObservation` plus the stamp (ns) of its image and its header."""

    stamp_ns: int
    header: Any
    rgb: np.ndarray
    depth: np.ndarray
    object_mask: np.ndarray
    hand_pos: np.ndarray
    intrinsics: np.ndarray
    cam_to_world: np.ndarray


class ObservationSync:
    """Collects parts per stamp; `add` returns the observation once all `required` parts match.

    Parts: "rgb", "depth", "object_mask", "hand_pos" (per stamp); "intrinsics", "cam_to_world"
    (latest). Parts not in `required` default to zeros / identity / an all-False mask.
    """

    def __init__(self, required: set[str]) -> None:
        """Expect the parts in `required`."""
        self.required = required
        self._lock = threading.Lock()
        self._pending: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self._latest: dict[str, np.ndarray] = {}

    def set_latest(self, part: str, value: np.ndarray) -> None:
        """Store a slow-changing part (intrinsics (3, 3) or cam_to_world (4, 4))."""
        with self._lock:
            self._latest[part] = value

    def add(self, stamp_ns: int, part: str, value: Any,
            header: Any = None) -> StampedObservation | None:
        """Add one per-stamp part; the complete observation for `stamp_ns`, or None yet."""
        with self._lock:
            parts = self._pending.setdefault(stamp_ns, {})
            parts[part] = value
            if header is not None:
                parts["header"] = header
            while len(self._pending) > _PENDING_STAMPS:
                self._pending.popitem(last=False)
            have = set(parts) | set(self._latest)
            if not self.required <= have or "rgb" not in parts:
                return None
            del self._pending[stamp_ns]
            latest = dict(self._latest)
        rgb = parts["rgb"]
        shape = rgb.shape[:2]
        return StampedObservation(
            stamp_ns=stamp_ns, header=parts.get("header"), rgb=rgb,
            depth=parts.get("depth", np.zeros(shape, np.float32)),
            object_mask=parts.get("object_mask", np.zeros(shape, bool)),
            hand_pos=parts.get("hand_pos", np.zeros(3)),
            intrinsics=latest.get("intrinsics", np.eye(3)),
            cam_to_world=latest.get("cam_to_world", np.eye(4)))
