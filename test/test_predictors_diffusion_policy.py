"""The goal-conditioned diffusion policy, its predictor wrapper and its hindsight dataset."""

import numpy as np
import pytest
import torch

from dts_planner.predictors.base import PredictorObservation
from dts_planner.data import ActionChunkDataset
from dts_planner.data.shards import EpisodeTable
from dts_planner.predictors.base import METAWORLD_ACTION_SPACE
from dts_planner.predictors.diffusion_policy import (
    DiffusionPolicy, DiffusionPolicyConfig, PolicyCheckpoint, load_policy)
from dts_planner.predictors.diffusion_policy_predictor import DiffusionPolicyPredictor
from predictors_synthetic import intrinsics

TINY = DiffusionPolicyConfig(image_size=32, encoder_channels=(8, 16), keypoints=4,
                             feature_dim=8, down_dims=(16, 32), groups=4, step_embed_dim=16)
GOAL_ONLY = DiffusionPolicyConfig(image_size=16, encoder_channels=(8,), keypoints=4,
                                  feature_dim=8, down_dims=(16, 32), groups=4,
                                  step_embed_dim=16, use_obs_image=False, use_gripper=True)


@pytest.fixture(scope="module")
def policy():
    torch.manual_seed(0)
    return DiffusionPolicy(TINY).eval()


def _images(batch, seed=0):
    return torch.rand(batch, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_sample_shape_range_and_ddim_steps(policy):
    calls = []
    hook = policy.unet.register_forward_hook(lambda *args: calls.append(1))
    actions = policy.sample(_images(2), image=_images(2, 1), hand_pos=torch.zeros(2, 3))
    hook.remove()
    assert actions.shape == (2, 16, 4)
    assert actions.abs().max() <= 1.0
    assert len(calls) == 8  # DDIM, 8 steps


def test_checkpoint_round_trip_weights_only(policy, tmp_path):
    path = tmp_path / "policy.pt"
    PolicyCheckpoint(TINY, policy.state_dict(), {"steps": 0}).save(str(path))
    loaded = load_policy(str(path))
    assert loaded.config == TINY
    args = {"goal": _images(1), "image": _images(1, 1), "hand_pos": torch.ones(1, 3)}
    first = policy.sample(**args, generator=torch.Generator().manual_seed(3))
    second = loaded.sample(**args, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(first, second)


def test_predictor_walks_goal_frames_then_asks_to_replan(policy):
    predictor = DiffusionPolicyPredictor(policy, calls_per_goal=2, goals_per_plan=2,
                                         goal_selection="schedule")
    rng = np.random.default_rng(0)
    observation = PredictorObservation(
        rng.integers(0, 255, (64, 64, 3), dtype=np.uint8), np.ones((64, 64), np.float32),
        np.zeros((64, 64), bool), np.zeros(3), intrinsics(60.0), np.eye(4))
    plan = rng.integers(0, 255, (7, 64, 64, 3), dtype=np.uint8)
    chunks = [predictor.predict(observation, plan) for _ in range(4)]
    assert [c.info["goal_index"] for c in chunks] == [0, 0, 1, 1]
    assert [c.replan for c in chunks] == [False, False, False, True]
    assert all(c.horizon == 16 and c.num_execute == 8 for c in chunks)
    assert all(METAWORLD_ACTION_SPACE.contains(c.data) for c in chunks)
    assert predictor.predict(observation, plan[::-1]).info["goal_index"] == 0  # new plan


def test_progress_goal_is_the_frame_after_the_nearest_one():
    """The goal follows the camera along the plan; a stalled robot asks for a new plan."""
    torch.manual_seed(0)
    predictor = DiffusionPolicyPredictor(DiffusionPolicy(GOAL_ONLY).eval(), patience=2)
    frames = np.stack([np.full((16, 16, 3), 40 * i, np.uint8) for i in range(6)])
    start, plan = frames[0], frames[1:]          # the plan was made from `start`
    observation = PredictorObservation(
        start, np.ones((16, 16), np.float32), np.zeros((16, 16), bool), np.zeros(3),
        intrinsics(16.0, 16), np.eye(4))
    first = predictor.predict(observation, plan)
    assert (first.info["progress"], first.info["goal_index"], first.replan) == (0, 0, False)
    observation.rgb = plan[1]
    assert predictor.predict(observation, plan).info["goal_index"] == 2
    observation.rgb = plan[0]                # progress never moves backwards
    assert predictor.predict(observation, plan).info["goal_index"] == 2
    assert predictor.predict(observation, plan).replan      # stalled for 2 calls
    observation.rgb = plan[4]
    assert predictor.predict(observation, plan).replan      # at the plan's last frame
    # a still plan (the current frame repeated) gives the current frame as the goal
    predictor.reset()
    observation.rgb = start
    chunk = predictor.predict(observation, np.repeat(start[None], 5, axis=0))
    assert chunk.info["goal_index"] == 0 and chunk.info["progress"] == 0


def test_predictor_feeds_back_the_last_executed_gripper_effort():
    torch.manual_seed(0)
    policy = DiffusionPolicy(GOAL_ONLY).eval()
    seen = []
    hook = policy.unet.register_forward_pre_hook(lambda module, args: seen.append(args[2]))
    predictor = DiffusionPolicyPredictor(policy)
    observation = PredictorObservation(
        np.zeros((16, 16, 3), np.uint8), np.ones((16, 16), np.float32), np.zeros((16, 16), bool),
        np.zeros(3), intrinsics(16.0, 16), np.eye(4))
    plan = np.random.default_rng(0).integers(0, 255, (3, 16, 16, 3), dtype=np.uint8)
    chunk = predictor.predict(observation, plan)
    predictor.predict(observation, plan)
    hook.remove()
    calls = GOAL_ONLY.inference_steps
    assert seen[0][0, -1] == 0.0                                 # gripper starts at 0
    assert seen[calls][0, -1] == pytest.approx(chunk.data[7, 3])  # the 8th executed effort


def test_action_chunks_clamp_goal_and_pad_actions():
    lengths = [20, 5]
    frames = sum(lengths)
    images = np.arange(frames, dtype=np.uint8)[:, None, None, None].repeat(3, -1)
    actions = np.tile(np.arange(frames, dtype=np.float32)[:, None] / 100, (1, 4))
    table = EpisodeTable(frames={"rgb": images, "hand_pos": np.zeros((frames, 3)),
                                 "action": actions},
                         starts=np.array([0, 20]), lengths=np.array(lengths),
                         instruction=np.array(["a", "a"]), task=np.array(["t", "t"]),
                         camera=np.array(["c", "c"]), seed=np.array([0, 1]))
    data = ActionChunkDataset(table, horizon=16, goal_offset=16)
    assert len(data) == 19 + 4  # every frame but each episode's last
    batch = data.__getitems__([0, 10, 19])
    assert batch["rgb"][:, 0, 0, 0].tolist() == [0, 10, 20]
    assert batch["goal_rgb"][:, 0, 0, 0].tolist() == [16, 19, 24]  # clamped to the last frame
    chunk = batch["actions"]
    np.testing.assert_allclose(chunk[0, :, 0], np.arange(16) / 100)
    # frame 10: actions 10..18, then zero motion with the last gripper effort (0.18)
    np.testing.assert_allclose(chunk[1, :9, 0], np.arange(10, 19) / 100)
    np.testing.assert_allclose(chunk[1, 9:, :3], 0.0)
    np.testing.assert_allclose(chunk[1, 9:, 3], 0.18)
    assert batch["valid"][1].sum() == 9
    # the gripper input is the effort commanded one step earlier (0 at an episode's start)
    np.testing.assert_allclose(batch["gripper"][:, 0], [0.0, 0.09, 0.0])
    # a goal offset range: u picks k uniformly from lo..hi
    ranged = ActionChunkDataset(table, horizon=16, goal_offset=(2, 5), episodes=np.array([0]))
    assert len(ranged) == 19
    goals = ranged.__getitems__([(0, u) for u in (0.0, 0.3, 0.6, 0.99)])["goal_rgb"]
    assert goals[:, 0, 0, 0].tolist() == [2, 3, 4, 5]
