"""The goal-conditioned diffusion policy, its predictor wrapper and its hindsight dataset."""

import numpy as np
import pytest
import torch

from dts_planner.data.shards import EpisodeTable
from dts_planner.predictors.base import METAWORLD_ACTION_SPACE
from dts_planner.predictors.diffusion_policy import (
    DiffusionPolicy, DiffusionPolicyConfig, PolicyCheckpoint, load_policy)
from dts_planner.predictors.diffusion_policy_predictor import DiffusionPolicyPredictor
from dts_planner.training.train_policy import HindsightChunks, to_tensor
from predictors_synthetic import FakeObservation, intrinsics

TINY = DiffusionPolicyConfig(image_size=32, encoder_channels=(8, 16), keypoints=4,
                             feature_dim=8, down_dims=(16, 32), groups=4, step_embed_dim=16)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Use one torch thread: on a shared 2-core machine more threads mostly wait."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def policy():
    torch.manual_seed(0)
    return DiffusionPolicy(TINY).eval()


def _images(batch, seed=0):
    return torch.rand(batch, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_sample_shape_range_and_ddim_steps(policy):
    calls = []
    hook = policy.unet.register_forward_hook(lambda *args: calls.append(1))
    actions = policy.sample(_images(2), _images(2, 1), torch.zeros(2, 3))
    hook.remove()
    assert actions.shape == (2, 16, 4)
    assert actions.abs().max() <= 1.0
    assert len(calls) == 8  # DDIM, 8 steps


def test_checkpoint_round_trip_weights_only(policy, tmp_path):
    path = tmp_path / "policy.pt"
    PolicyCheckpoint(TINY, policy.state_dict(), {"steps": 0}).save(str(path))
    loaded = load_policy(str(path))
    assert loaded.config == TINY
    args = (_images(1), _images(1, 1), torch.ones(1, 3))
    first = policy.sample(*args, generator=torch.Generator().manual_seed(3))
    second = loaded.sample(*args, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(first, second)


def test_predictor_walks_goal_frames_then_asks_to_replan(policy):
    predictor = DiffusionPolicyPredictor(policy, calls_per_goal=2, goals_per_plan=2)
    rng = np.random.default_rng(0)
    observation = FakeObservation(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8),
                                  np.ones((64, 64), np.float32), np.zeros((64, 64), bool),
                                  np.zeros(3), intrinsics(60.0), np.eye(4))
    plan = rng.integers(0, 255, (7, 64, 64, 3), dtype=np.uint8)
    chunks = [predictor.predict(observation, plan) for _ in range(4)]
    assert [c.info["goal_index"] for c in chunks] == [0, 0, 1, 1]
    assert [c.replan for c in chunks] == [False, False, False, True]
    assert all(c.horizon == 16 and c.num_execute == 8 for c in chunks)
    assert all(METAWORLD_ACTION_SPACE.contains(c.data) for c in chunks)
    assert predictor.predict(observation, plan[::-1]).info["goal_index"] == 0  # new plan


def test_hindsight_chunks_clamp_goal_and_pad_actions():
    lengths = [20, 5]
    frames = sum(lengths)
    images = np.arange(frames, dtype=np.uint8)[:, None, None, None].repeat(3, -1)
    actions = np.tile(np.arange(frames, dtype=np.float32)[:, None] / 100, (1, 4))
    table = EpisodeTable(frames={"rgb": images, "hand_pos": np.zeros((frames, 3)),
                                 "action": actions},
                         starts=np.array([0, 20]), lengths=np.array(lengths),
                         instruction=np.array(["a", "a"]), task=np.array(["t", "t"]),
                         camera=np.array(["c", "c"]), seed=np.array([0, 1]))
    data = HindsightChunks.from_table(table, np.array([0, 1]), horizon=16, goal_offset=16)
    assert len(data) == 19 + 4  # every frame but each episode's last
    image, _, goal, chunk = data.batch(np.array([0, 10, 19]))
    assert image[:, 0, 0, 0].tolist() == [0, 10, 20]
    assert goal[:, 0, 0, 0].tolist() == [16, 19, 24]  # clamped to the episode's last frame
    np.testing.assert_allclose(chunk[0, :, 0], np.arange(16) / 100)
    # frame 10: actions 10..18, then zero motion with the last gripper effort (0.18)
    np.testing.assert_allclose(chunk[1, :9, 0], np.arange(10, 19) / 100)
    np.testing.assert_allclose(chunk[1, 9:, :3], 0.0)
    np.testing.assert_allclose(chunk[1, 9:, 3], 0.18)
    assert to_tensor(image).shape == (3, 3, 1, 1)
