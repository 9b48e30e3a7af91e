"""Video training: steps run, checkpoints load through load_video_model, runs resume, export."""

import csv

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from dts_planner.data import VideoClipDataset
from dts_planner.data.datasets import StepBatchSampler
from dts_planner.models import load_video_model, read_checkpoint, UNetConfig, VideoModelConfig
from dts_planner.training.train_video import parse_args, train

TINY = VideoModelConfig(
    image_size=(16, 16), num_frames=7,
    unet=UNetConfig(model_channels=32, num_res_blocks=1, channel_mult=(1, 2),
                    attention_resolutions=(2,), dims=2, task_token_channels=384),
    text_encoder="minilm")


def _state(path):
    checkpoint = read_checkpoint(path)
    return checkpoint["model"], checkpoint["ema"], checkpoint["opt"]


@pytest.mark.long_running
def test_train_resume_and_export(tmp_path, reach_shards):
    """A run stopped after 2 of 3 steps and resumed ends exactly like an uninterrupted one."""
    run = tmp_path / "run"
    options = ["--data", str(reach_shards), "--batch-size", "2", "--save-every", "1",
               "--steps", "3", "--warmup", "1", "--threads", "1"]

    checkpoint_path = train(parse_args(options + ["--out", str(run), "--chunk-steps", "2"]),
                            TINY)
    checkpoint = read_checkpoint(checkpoint_path)
    assert checkpoint["step"] == 2 and checkpoint["opt"]["state"]
    assert set(checkpoint) >= {"model", "ema", "opt", "step", "version"}
    model = load_video_model(checkpoint_path)
    assert model.config == TINY

    export = tmp_path / "default.pt"
    train(parse_args(options + ["--out", str(run), "--export", str(export)]), TINY)
    assert read_checkpoint(checkpoint_path)["step"] == 3
    with open(run / "loss.csv") as handle:
        assert [row["step"] for row in csv.DictReader(handle)] == ["1", "2", "3"]
    assert (run / "loss_curve.png").stat().st_size > 1000

    whole = train(parse_args(options + ["--out", str(tmp_path / "whole")]), TINY)
    expected, got = _state(whole), _state(checkpoint_path)
    for part_expected, part_got in zip(expected[:2], got[:2]):   # online and EMA weights
        assert part_expected.keys() == part_got.keys()
        for name in part_expected:
            torch.testing.assert_close(part_got[name], part_expected[name], rtol=0, atol=0,
                                       msg=name)
    for index, state in expected[2]["state"].items():             # AdamW moments
        for name in ("exp_avg", "exp_avg_sq"):
            torch.testing.assert_close(got[2]["state"][index][name], state[name], rtol=0,
                                       atol=0)

    shipped = read_checkpoint(export)
    assert "opt" not in shipped and shipped["step"] == 3
    exported, trained = load_video_model(export), load_video_model(checkpoint_path)
    for (name, a), (_, b) in zip(exported.state_dict().items(), trained.state_dict().items()):
        assert torch.allclose(a, b, atol=1e-2, rtol=1e-2), name


def test_fine_tune_at_a_new_image_size_starts_from_the_given_weights(tmp_path, reach_shards):
    """--init-from loads another run's EMA weights; 16 px shards are resized to an 8 px model."""
    source = train(parse_args(["--data", str(reach_shards), "--out", str(tmp_path / "source"),
                               "--batch-size", "2", "--steps", "2"]), TINY)
    clip = VideoClipDataset(reach_shards, num_frames=8, image_size=(8, 8))[0]["frames"]
    assert clip.shape == (8, 8, 8, 3) and clip.dtype.name == "uint8"

    tuned = train(parse_args(["--data", str(reach_shards), "--out", str(tmp_path / "tuned"),
                              "--batch-size", "2", "--steps", "1", "--lr", "0",
                              "--image-size", "8", "--init-from", str(source)]), TINY)
    model = load_video_model(tuned)
    assert model.config.image_size == (8, 8)
    assert torch.get_num_threads() == 1, "train() set the process's threads (--threads 2)"
    assert read_checkpoint(tuned)["extra"]["init_from"] == str(source)
    start = load_video_model(source).state_dict()   # its EMA weights; lr 0 keeps them
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, start[name], msg=name)


def test_workers_draw_the_same_clips_as_the_main_process(reach_shards):
    """Random starts come from the batch sampler, not from per-process generators."""
    dataset = VideoClipDataset(reach_shards, num_frames=4)
    sampler = StepBatchSampler(np.array([0.5, 0.5]), 3, seed=1, first_step=0, last_step=2)
    inline = [b["frames"] for b in DataLoader(dataset, batch_sampler=sampler)]
    pooled = [b["frames"] for b in DataLoader(dataset, batch_sampler=sampler, num_workers=2)]
    assert all(torch.equal(a, b) for a, b in zip(inline, pooled))
    # an int key draws its start from a generator seeded per worker: two workers differ
    loader = DataLoader(dataset, batch_size=None, sampler=[0] * 8, num_workers=2)
    clips = [item["frames"].numpy().tobytes() for item in loader]
    assert clips[0::2] != clips[1::2]
