"""Meta-World bridge message helpers: action chunks in, CameraInfo and poses out."""

from __future__ import annotations

from dts_msgs.msg import ActionChunk
import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from std_msgs.msg import Header

from dts_planner.common.poses import pose_matrix
from dts_planner.ros.metaworld_bridge_node import camera_info, chunk_rows, pose_msg


def chunk(data: list[float], horizon: int, space: int = 0) -> ActionChunk:
    """Build an ActionChunk of `horizon` rows."""
    return ActionChunk(action_space=space, horizon=horizon, data=data,
                       dimension_names=["dx", "dy", "dz", "gripper"], dt=0.0125)


def test_chunk_rows_accepts_meta_world_actions() -> None:
    rows = chunk_rows(chunk([0.1, 0.2, 0.3, 1.0, -0.1, 0.0, 0.0, -1.0], 2))
    np.testing.assert_allclose(rows, [[0.1, 0.2, 0.3, 1.0], [-0.1, 0.0, 0.0, -1.0]], rtol=1e-6)


@pytest.mark.parametrize("bad,reason", [
    (chunk([0.0] * 4, 1, space=ActionChunk.BASE_TWIST), "action_space"),
    (chunk([0.0] * 5, 1), "values"),
    (chunk([], 0), "values"),
    (chunk([0.0, float("nan"), 0.0, 0.0], 1), "NaN"),
])
def test_chunk_rows_rejects_bad_chunks(bad: ActionChunk, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        chunk_rows(bad)


def test_camera_info_and_pose_round_trip() -> None:
    K = np.array([[50.0, 0, 31.5], [0, 50.0, 31.5], [0, 0, 1]])
    info = camera_info(K, 64, 64, Header(frame_id="camera"))
    assert (info.height, info.width, info.header.frame_id) == (64, 64, "camera")
    np.testing.assert_allclose(np.reshape(info.k, (3, 3)), K)
    quaternion = Rotation.from_euler("xyz", [0.3, -0.2, 1.0]).as_quat()
    pose = np.concatenate([[0.1, 0.2, 0.3], quaternion])
    msg = pose_msg(pose, Header(frame_id="world"))
    p, q = msg.pose.position, msg.pose.orientation
    # the subscriber's matrix is bitwise the simulator's (both built by pose_matrix)
    assert np.array_equal(pose_matrix([p.x, p.y, p.z], [q.x, q.y, q.z, q.w]),
                          pose_matrix(pose[:3], pose[3:]))
