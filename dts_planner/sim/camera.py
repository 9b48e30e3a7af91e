"""Pinhole model of a fixed MuJoCo camera in OpenCV conventions.

Pixels (u, v) = (column, row) with the centre of pixel (0, 0) at (0, 0); the camera frame is
x right, y down, z forward (metres). MuJoCo's own camera frame is x right, y up, looking along -z.
Meta-World's corner cameras are mounted upside-down (their up axis points at the floor); we turn
their images by 180 degrees, which is a rotation about the optical axis, so the flipped image is
still an ordinary (non-mirrored) pinhole camera and ``cam_to_world`` stays a rotation.
"""

from __future__ import annotations

import math

import mujoco
import numpy as np

from dts_planner.common.poses import pose_matrix, quaternion_of

# MuJoCo camera axes -> OpenCV axes, for an upright image and for an image turned by 180 degrees.
_MUJOCO_TO_OPENCV = np.diag([1.0, -1.0, -1.0])
_MUJOCO_TO_OPENCV_TURNED = np.diag([-1.0, 1.0, -1.0])


def is_upside_down(data: mujoco.MjData, camera_id: int) -> bool:
    """Whether the camera's up axis points below the horizon (its image needs a 180° turn)."""
    up_axis = data.cam_xmat[camera_id].reshape(3, 3)[:, 1]
    return bool(up_axis[2] < 0.0)


def intrinsics(model: mujoco.MjModel, camera_id: int, height: int, width: int) -> np.ndarray:
    """Intrinsic matrix K (3, 3) of a camera rendered at height x width pixels (square pixels)."""
    focal = 0.5 * height / math.tan(math.radians(model.cam_fovy[camera_id]) / 2.0)
    return np.array([[focal, 0.0, (width - 1) / 2.0],
                     [0.0, focal, (height - 1) / 2.0],
                     [0.0, 0.0, 1.0]])


def camera_pose(data: mujoco.MjData, camera_id: int, turned: bool) -> np.ndarray:
    """Pose of the OpenCV camera frame in the world as (7,): position xyz, quaternion xyzw.

    ``turned`` for a 180°-turned image. The observation's ``cam_to_world`` matrix is built from
    it with `dts_planner.common.poses.pose_matrix`, as a ROS subscriber rebuilds it.
    """
    axes = _MUJOCO_TO_OPENCV_TURNED if turned else _MUJOCO_TO_OPENCV
    rotation = data.cam_xmat[camera_id].reshape(3, 3) @ axes
    return np.concatenate([data.cam_xpos[camera_id], quaternion_of(rotation)])


def cam_to_world(data: mujoco.MjData, camera_id: int, turned: bool) -> np.ndarray:
    """Pose (4, 4) of the OpenCV camera frame in the world; ``turned`` for a 180°-turned image."""
    pose = camera_pose(data, camera_id, turned)
    return pose_matrix(pose[:3], pose[3:])
