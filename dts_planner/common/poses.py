"""Rigid poses as (position, unit quaternion): the one conversion to and from 4x4 matrices.

A pose crosses ROS (geometry_msgs/Pose) as a position and a quaternion; building the matrix from
them with this one function on both sides of the wire gives bitwise the same matrix, so the
simulator's observations and the ones the action predictor rebuilds from messages are equal.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation


def pose_matrix(position: np.ndarray, quaternion: np.ndarray) -> np.ndarray:
    """Build the (4, 4) transform of a position (3,) and a unit quaternion (4,) x, y, z, w."""
    pose = np.eye(4)
    pose[:3, :3] = Rotation.from_quat(np.asarray(quaternion, float)).as_matrix()
    pose[:3, 3] = position
    return pose


def quaternion_of(rotation: np.ndarray) -> np.ndarray:
    """Return the unit quaternion (4,) x, y, z, w of a (3, 3) rotation matrix."""
    return Rotation.from_matrix(np.asarray(rotation, float)).as_quat()
