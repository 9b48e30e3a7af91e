"""The demonstration generator writes a shard on the fly and both datasets read it."""

import numpy as np

from dts_planner.data import ActionChunkDataset, clip_frame_indices, load_episodes, \
    VideoClipDataset
from dts_planner.data.generate_metaworld import generate, main


def test_clip_indices_span_start_to_end():
    assert clip_frame_indices(30, 2, 8).tolist() == [2, 6, 10, 14, 17, 21, 25, 29]
    assert clip_frame_indices(5, 4, 8).tolist() == [4] * 8


def test_generator_shard_and_datasets(tmp_path):
    paths = generate(tmp_path, tasks=["reach"], cameras=["corner"], seeds=range(3, 4),
                     resolution=32, max_steps=12)
    assert len(paths) == 1 and paths[0].name == "reach_corner_00003-00003.npz"
    with np.load(paths[0]) as shard:
        assert shard["rgb"].shape == (13, 32, 32, 3) and shard["rgb"].dtype == np.uint8
        assert shard["depth"].dtype == np.float16 and shard["segmentation"].dtype == np.int16
        assert shard["action"].shape == (13, 4) and not shard["action"][-1].any()
        assert shard["starts"].tolist() == [0, 13]
        assert shard["instruction"].tolist() == ["reach"] and shard["seed"].tolist() == [3]
        assert shard["intrinsics"].shape == (1, 3, 3) and shard["cam_to_world"].shape == (1, 4, 4)
        assert not shard["success"][0]   # 12 steps are too few to reach
    assert load_episodes(tmp_path, successful_only=False).lengths.tolist() == [13]

    clips = VideoClipDataset(tmp_path, successful_only=False)
    clip = clips[0]
    assert len(clips) == 1 and clip["frames"].shape == (8, 32, 32, 3)
    assert clip["instruction"] == "reach"
    assert np.array_equal(clip["frames"][-1], load_episodes(
        tmp_path, successful_only=False).frames["rgb"][-1])

    chunks = ActionChunkDataset(tmp_path, horizon=16, extra=("depth", "object_mask"),
                                successful_only=False)
    assert len(chunks) == 12
    sample = chunks[2]
    assert sample["actions"].shape == (16, 4) and sample["valid"].sum() == 10
    assert np.array_equal(sample["goal_rgb"], clips.table.frames["rgb"][12])
    assert sample["depth"].shape == (32, 32) and sample["object_mask"].dtype == bool

    # A second run finds the shard and does nothing.
    mtime = paths[0].stat().st_mtime
    main(["--out", str(tmp_path), "--tasks", "reach", "--cameras", "corner", "--seeds", "3:4",
          "--resolution", "32", "--max-steps", "12"])
    assert paths[0].stat().st_mtime == mtime
