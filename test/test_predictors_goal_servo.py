"""The goal servo walks the waypoints its network reads from the plan's frames."""

import numpy as np
import pytest
import torch

from dts_planner.predictors import make_predictor, required_parts
from dts_planner.predictors.diffusion_policy import (
    DiffusionPolicy, DiffusionPolicyConfig, PolicyCheckpoint)
from dts_planner.predictors.goal_servo import GoalServoConfig, GoalServoPredictor
from dts_planner.predictors.base import PredictorObservation
from predictors_synthetic import intrinsics

HEAD = DiffusionPolicyConfig(image_size=16, encoder_channels=(8,), keypoints=4, feature_dim=8,
                             down_dims=(16, 32), groups=4, step_embed_dim=16,
                             use_obs_image=False, use_gripper=True, aux_goal_state=True)


class ScriptedServo(GoalServoPredictor):
    """The servo with waypoints written in the plan frames' first pixel instead of read."""

    def goal_states(self, frames):
        return frames[:, 0, 0, :4].astype(np.float64) / 100 - 1.0


def _frame(x, y, z, effort):
    frame = np.zeros((16, 16, 4), np.uint8)
    frame[0, 0] = np.round((np.array([x, y, z, effort]) + 1.0) * 100)
    return frame


def _observation(hand):
    return PredictorObservation(np.zeros((16, 16, 3), np.uint8),
                                np.ones((16, 16), np.float32), np.zeros((16, 16), bool),
                                np.asarray(hand, float), intrinsics(16.0, 16), np.eye(4))


def test_servo_walks_waypoints_closes_at_the_grasp_and_asks_for_a_new_plan():
    torch.manual_seed(0)
    servo = ScriptedServo(DiffusionPolicy(HEAD).eval(),
                          GoalServoConfig(gain=10.0, reach=0.02, grip_reach=0.01, grip_wait=2,
                                          grasp_descent=0.0))
    plan = np.stack([_frame(0.1, 0.0, 0.0, -1.0), _frame(0.1, 0.0, -0.1, 0.8),
                     _frame(0.1, 0.1, 0.0, 0.8)])
    chunk = servo.predict(_observation([0.0, 0.0, 0.0]), plan)
    np.testing.assert_allclose(chunk.data[0], [1, 0, 0, 0], atol=1e-6)   # to waypoint 0
    assert chunk.horizon == 1 and not chunk.replan
    # at waypoint 0 (open) it heads for the grasp; 1.5 cm from it the gripper stays open
    chunk = servo.predict(_observation([0.1, 0.0, 0.005]), plan)
    assert chunk.info["goal_index"] == 1 and chunk.data[0, 3] == -1.0
    np.testing.assert_allclose(chunk.data[0, :3], [0.0, 0.0, -1.0], atol=1e-6)
    chunk = servo.predict(_observation([0.1, 0.0, -0.085]), plan)
    assert chunk.info["goal_index"] == 1 and chunk.data[0, 3] == -1.0
    # within grip_reach of the grasp waypoint: close and hold still for grip_wait steps
    chunk = servo.predict(_observation([0.1, 0.0, -0.095]), plan)
    np.testing.assert_allclose(chunk.data[0], [0.0, 0.0, 0.0, 0.8], atol=1e-6)
    servo.predict(_observation([0.1, 0.0, -0.095]), plan)
    chunk = servo.predict(_observation([0.1, 0.0, -0.095]), plan)
    assert chunk.info["goal_index"] == 2 and chunk.data[0, 2] > 0.9 and chunk.data[0, 3] == 0.8
    chunk = servo.predict(_observation([0.1, 0.1, 0.0]), plan)
    assert chunk.replan                                                 # past the last one


def test_a_grasp_is_aimed_below_its_estimate_and_closes_on_contact():
    """Frames read too high would close on air: the grasp goes lower until the hand stalls."""
    servo = ScriptedServo(DiffusionPolicy(HEAD).eval(),
                          GoalServoConfig(gain=10.0, grip_reach=0.01, grip_wait=2,
                                          grasp_descent=0.05, stall_steps=3))
    plan = np.stack([_frame(0.0, 0.0, -0.1, 0.8), _frame(0.0, 0.0, 0.1, 0.8)])
    chunk = servo.predict(_observation([0.0, 0.0, -0.1]), plan)    # at the estimate: go on down
    assert chunk.info["goal_index"] == 0 and chunk.data[0, 3] == 0.0
    np.testing.assert_allclose(chunk.info["target"], [0.0, 0.0, -0.15], atol=1e-6)
    assert chunk.data[0, 2] < -0.4
    for _ in range(3):                                              # blocked at -0.12: contact
        chunk = servo.predict(_observation([0.0, 0.0, -0.12]), plan)
    assert chunk.info["goal_index"] == 0
    chunk = servo.predict(_observation([0.0, 0.0, -0.12]), plan)    # stalled: close, hold
    np.testing.assert_allclose(chunk.data[0], [0.0, 0.0, 0.0, 0.8], atol=1e-6)
    servo.predict(_observation([0.0, 0.0, -0.12]), plan)
    chunk = servo.predict(_observation([0.0, 0.0, -0.12]), plan)
    assert chunk.info["goal_index"] == 1 and chunk.data[0, 2] > 0.9    # lift, closed
    np.testing.assert_allclose(chunk.info["target"], [0.0, 0.0, 0.1], atol=1e-6)


def test_a_still_plan_keeps_the_hand_where_it_is():
    servo = ScriptedServo(DiffusionPolicy(HEAD).eval())
    plan = np.repeat(_frame(0.2, 0.3, 0.1, 0.0)[None], 4, axis=0)    # the hand's own place
    chunks = [servo.predict(_observation([0.2, 0.3, 0.1]), plan) for _ in range(3)]
    assert all(np.abs(c.data[0, :3]).max() < 1e-9 for c in chunks)


def test_network_waypoints_and_factory(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "policy.pt"
    PolicyCheckpoint(HEAD, DiffusionPolicy(HEAD).state_dict()).save(str(path))
    servo = make_predictor("goal_servo", checkpoint_path=str(path))
    frames = np.random.default_rng(0).integers(0, 255, (3, 16, 16, 3), dtype=np.uint8)
    states = servo.goal_states(frames)
    assert states.shape == (3, 4) and np.isfinite(states).all()
    assert required_parts("goal_servo") == {"rgb", "hand_pos"}
    no_head = tmp_path / "no_head.pt"
    plain = DiffusionPolicyConfig(image_size=16, encoder_channels=(8,), keypoints=4,
                                  feature_dim=8, down_dims=(16, 32), groups=4)
    PolicyCheckpoint(plain, DiffusionPolicy(plain).state_dict()).save(str(no_head))
    with pytest.raises(ValueError, match="goal-state head"):
        make_predictor("goal_servo", checkpoint_path=str(no_head))
