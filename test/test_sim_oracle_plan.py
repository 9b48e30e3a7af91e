"""Oracle plans are cut from the expert's rollout exactly as the video model's training clips."""

import numpy as np
import pytest

from dts_planner.data.generate_metaworld import record_episode
from dts_planner.data.datasets import clip_frame_indices
from dts_planner.eval.oracle_plan import OraclePlanner
from dts_planner.sim import MetaWorldEnv


@pytest.mark.long_running
def test_oracle_plan_is_the_expert_clip_from_the_current_frame():
    with MetaWorldEnv("reach", camera="corner", seed=3, resolution=32) as env:
        expert = record_episode(env, seed=3).frames("rgb")    # the whole expert episode
        observation = env.reset(3)
        with OraclePlanner(env, num_frames=7) as oracle:
            frames, record = oracle(observation)
        with OraclePlanner(env, 7, image_size=(16, 16)) as oracle:
            small, _ = oracle(observation)
    clip = expert[clip_frame_indices(len(expert), 0, 8)]
    assert record.nfe == len(expert) - 1
    np.testing.assert_array_equal(frames, clip[1:])              # the frames after the first
    assert small.shape == (7, 16, 16, 3)
