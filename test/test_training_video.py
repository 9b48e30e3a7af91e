"""Video training: steps run, checkpoints load through load_video_model, runs resume, export."""

import csv

import torch

from dts_planner.data import VideoClipDataset
from dts_planner.data.generate_metaworld import generate
from dts_planner.models import load_video_model, read_checkpoint, UNetConfig, VideoModelConfig
from dts_planner.training.train_video import parse_args, train

TINY = VideoModelConfig(
    image_size=(16, 16), num_frames=7,
    unet=UNetConfig(model_channels=32, num_res_blocks=1, channel_mult=(1, 2),
                    attention_resolutions=(2,), dims=2, task_token_channels=384),
    text_encoder="minilm")


def test_train_resume_and_export(tmp_path):
    data, run = tmp_path / "data", tmp_path / "run"
    generate(data, tasks=["reach"], cameras=["corner"], seeds=range(0, 1), resolution=16)
    options = ["--data", str(data), "--out", str(run), "--batch-size", "2", "--save-every", "1"]

    checkpoint_path = train(parse_args(options + ["--steps", "2"]), TINY)
    checkpoint = read_checkpoint(checkpoint_path)
    assert checkpoint["step"] == 2 and checkpoint["opt"]["state"]
    assert set(checkpoint) >= {"model", "ema", "opt", "step", "version"}
    model = load_video_model(checkpoint_path)
    assert model.config == TINY

    export = tmp_path / "default.pt"
    train(parse_args(options + ["--steps", "3", "--export", str(export)]), TINY)
    assert read_checkpoint(checkpoint_path)["step"] == 3
    with open(run / "loss.csv") as handle:
        assert [row["step"] for row in csv.DictReader(handle)] == ["1", "2", "3"]
    assert (run / "loss_curve.png").stat().st_size > 1000

    shipped = read_checkpoint(export)
    assert "opt" not in shipped and shipped["step"] == 3
    exported, trained = load_video_model(export), load_video_model(checkpoint_path)
    for (name, a), (_, b) in zip(exported.state_dict().items(), trained.state_dict().items()):
        assert torch.allclose(a, b, atol=1e-2, rtol=1e-2), name


def test_fine_tune_at_a_new_image_size_starts_from_the_given_weights(tmp_path):
    """--init-from loads another run's EMA weights; 16 px shards are resized to an 8 px model."""
    data = tmp_path / "data"
    generate(data, tasks=["reach"], cameras=["corner"], seeds=range(0, 1), resolution=16)
    source = train(parse_args(["--data", str(data), "--out", str(tmp_path / "source"),
                               "--batch-size", "2", "--steps", "2"]), TINY)
    clip = VideoClipDataset(data, num_frames=8, image_size=(8, 8))[0]["frames"]
    assert clip.shape == (8, 8, 8, 3) and clip.dtype.name == "uint8"

    tuned = train(parse_args(["--data", str(data), "--out", str(tmp_path / "tuned"),
                              "--batch-size", "2", "--steps", "1", "--lr", "0",
                              "--image-size", "8", "--init-from", str(source)]), TINY)
    model = load_video_model(tuned)
    assert model.config.image_size == (8, 8)
    assert read_checkpoint(tuned)["extra"]["init_from"] == str(source)
    start = load_video_model(source).state_dict()   # its EMA weights; lr 0 keeps them
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, start[name], msg=name)
