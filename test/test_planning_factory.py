"""The planner factory: AVDC-style checkpoints (no stored config) need a preset."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dts_planner.diffusion import DDIMSampler
from dts_planner.models import CheckpointError, get_preset, random_video_model, save_checkpoint
from dts_planner.planning.factory import build_planner


@pytest.fixture
def release_like_checkpoint(tmp_path: Path) -> Path:
    """Save a `default`-preset model in AVDC layout without our `config` entry."""
    model = random_video_model(get_preset("default"), seed=3)
    path = tmp_path / "model-24.pt"
    save_checkpoint(path, model, shippable=True)
    data = torch.load(path, weights_only=True)
    del data["config"]
    torch.save(data, path)
    return path


def test_checkpoint_without_config_loads_with_model_preset(release_like_checkpoint: Path) -> None:
    """model_path + model_preset loads the checkpoint's weights, not a random model."""
    planner, model_id = build_planner(str(release_like_checkpoint), "default", 0, "default",
                                      DDIMSampler(2), torch.device("cpu"))
    expected = random_video_model(get_preset("default"), seed=3)
    loaded = planner.model.state_dict()
    for key, value in expected.state_dict().items():
        torch.testing.assert_close(loaded[key], value.half().float())
    assert model_id.startswith("model-24@")


def test_checkpoint_without_config_and_without_preset_fails_clearly(
        release_like_checkpoint: Path) -> None:
    """Without model_preset the loader says that a preset is needed."""
    with pytest.raises(CheckpointError, match="preset"):
        build_planner(str(release_like_checkpoint), "", 0, "default", DDIMSampler(2),
                      torch.device("cpu"))
