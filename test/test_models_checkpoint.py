"""Checkpoints: AVDC layout round trips strictly; missing/corrupt/mismatched files fail clearly."""

import os
from types import SimpleNamespace

import pytest
import torch

from dts_planner.models import (
    AVDC_BRIDGE, AVDC_METAWORLD, AVDC_THOR, CheckpointError, DEFAULT_CONFIG, load_video_model,
    read_checkpoint, save_checkpoint, UNetConfig, VideoDiffusionModel, VideoModelConfig)
import dts_planner.models.checkpoint as checkpoint_module

AVDC_SCHEDULE_BUFFERS = ["betas", "alphas_cumprod", "posterior_variance", "loss_weight"]


def tiny_config() -> VideoModelConfig:
    unet = UNetConfig(model_channels=32, num_res_blocks=1, channel_mult=(1, 2),
                      attention_resolutions=(2,), dims=3, task_token_channels=32)
    return VideoModelConfig(image_size=(16, 16), num_frames=3, unet=unet, text_encoder="minilm")


def avdc_style_file(path, config: VideoModelConfig) -> None:
    """Write an AVDC checkpoint (no config entry) for ``config`` with stride-0 dummy tensors."""
    with torch.device("meta"):
        state = VideoDiffusionModel(config).state_dict()
    shapes = {key: value.shape for key, value in state.items()}
    weights = {key: torch.full((), 0.01).expand(shape) for key, shape in shapes.items()}
    buffers = {name: torch.zeros(100) for name in AVDC_SCHEDULE_BUFFERS}
    diffusion = {**{"model." + key: value for key, value in weights.items()}, **buffers}
    ema = {"initted": torch.tensor([True]), "step": torch.tensor(240000),
           **{"online_model." + key: value for key, value in diffusion.items()},
           **{"ema_model." + key: value for key, value in diffusion.items()}}
    torch.save({"step": 240000, "model": diffusion, "opt": {}, "ema": ema, "scaler": None,
                "version": "0.0"}, path)


def test_own_checkpoint_round_trips_in_avdc_layout(tmp_path):
    torch.manual_seed(0)
    online, ema = VideoDiffusionModel(tiny_config()), VideoDiffusionModel(tiny_config())
    path = tmp_path / "model-3.pt"
    save_checkpoint(path, online, ema_model=ema, step=3, extra={"loss": [0.5, 0.25]})
    raw = read_checkpoint(path)
    assert {"step", "model", "opt", "ema", "scaler", "version", "config"} <= set(raw)
    assert {"initted", "step"} <= set(raw["ema"])
    assert any(key.startswith("online_model.model.unet.") for key in raw["ema"])
    assert raw["extra"] == {"loss": [0.5, 0.25]}
    loaded = load_video_model(path)
    assert loaded.config == tiny_config() and not loaded.training
    for key, value in ema.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value, rtol=0, atol=0)
    online_loaded = load_video_model(path, use_ema=False)
    torch.testing.assert_close(online_loaded.unet.out[0].weight, online.unet.out[0].weight)


def test_shippable_checkpoint_keeps_only_half_precision_ema(tmp_path):
    model = VideoDiffusionModel(tiny_config())
    path = tmp_path / "ship.pt"
    save_checkpoint(path, model, shippable=True)
    raw = read_checkpoint(path)
    assert "model" not in raw and not any(k.startswith("online_model") for k in raw["ema"])
    loaded = load_video_model(path)
    assert loaded.unet.time_embed[0].weight.dtype == torch.float32
    torch.testing.assert_close(loaded.unet.time_embed[0].weight, model.unet.time_embed[0].weight,
                               atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize("preset, config", [("avdc_metaworld", AVDC_METAWORLD),
                                            ("avdc_thor", AVDC_THOR)])
def test_avdc_release_layout_loads_strictly_with_a_preset(tmp_path, preset, config):
    path = tmp_path / "model-24.pt"
    avdc_style_file(path, config)
    with pytest.raises(CheckpointError, match="preset="):
        load_video_model(path)
    model = load_video_model(path, preset=preset)
    assert model.config == config
    assert sum(p.numel() for p in model.unet.parameters()) > 100_000_000


def test_wrong_config_lists_missing_unexpected_and_mismatched_keys(tmp_path):
    path = tmp_path / "default.pt"
    save_checkpoint(path, VideoDiffusionModel(DEFAULT_CONFIG))
    with pytest.raises(CheckpointError) as error:
        load_video_model(path, preset="avdc_thor")
    message = str(error.value)
    assert "missing keys" in message and "unexpected keys" in message
    assert "shape mismatches" in message and "input_blocks.0.0" in message


def test_missing_corrupt_and_pickled_files_fail_clearly(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_video_model(tmp_path / "nope.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a checkpoint" * 50)
    with pytest.raises(CheckpointError, match="corrupt"):
        load_video_model(garbage)
    good = tmp_path / "good.pt"
    save_checkpoint(good, VideoDiffusionModel(tiny_config()))
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_video_model(truncated)
    pickled = tmp_path / "pickled.pt"
    torch.save({"ema": {}, "config": tiny_config()}, pickled)   # a pickled class: refused
    with pytest.raises(CheckpointError, match="plain tensors"):
        load_video_model(pickled)
    empty = tmp_path / "empty.pt"
    torch.save({"step": 1}, empty)
    with pytest.raises(CheckpointError, match="no video U-Net weights"):
        load_video_model(empty)


class Payload:
    """Pickles as a call of os.system: loading it without weights_only would run a command."""

    def __init__(self, marker):
        """Touch ``marker`` if ever unpickled."""
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_malicious_pickle_is_refused_in_one_clean_line_naming_the_global(tmp_path):
    # issue 13: torch's message had ANSI escape codes and did not name the refused global
    marker = tmp_path / "payload_ran"
    path = tmp_path / "malicious.pt"
    torch.save({"ema": {"ema_model.model.unet.x": torch.zeros(1)}, "hook": Payload(marker)},
               path)
    with pytest.raises(CheckpointError) as error:
        load_video_model(path)
    message = str(error.value)
    assert "\n" not in message and "\x1b" not in message, message
    assert f"{os.system.__module__}.system" in message and "pickle" in message
    assert "weights_only=True" in message and str(path) in message
    assert not marker.exists()
    pickled = tmp_path / "pickled_config.pt"
    torch.save({"config": tiny_config()}, pickled)
    with pytest.raises(CheckpointError, match="rebuild .*configs.VideoModelConfig"):
        read_checkpoint(pickled)


def test_presets_have_avdc_frame_counts():
    # AVDC's sample_per_seq counts the conditioning frame: Meta-World/iTHOR 8, Bridge 7
    assert [preset.num_frames for preset in (AVDC_METAWORLD, AVDC_THOR, AVDC_BRIDGE)] == [7, 7, 6]
    assert VideoDiffusionModel.noise_shape(SimpleNamespace(config=AVDC_BRIDGE), 2) == \
        (2, 18, 48, 64)


def test_missing_embedded_default_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint_module, "DEFAULT_WEIGHTS", tmp_path / "video_default.pt")
    with pytest.raises(CheckpointError, match="embedded default"):
        load_video_model(None)


def test_unavailable_cuda_device_is_a_clear_error(tmp_path):
    path = tmp_path / "m.pt"
    save_checkpoint(path, VideoDiffusionModel(tiny_config()))
    if torch.cuda.is_available():
        pytest.skip("a CUDA device exists here")
    with pytest.raises(ValueError, match="cuda:0"):
        load_video_model(path, device="cuda:0")


@pytest.mark.skipif(not checkpoint_module.DEFAULT_WEIGHTS.is_file(),
                    reason="embedded default weights not trained yet")
def test_embedded_default_loads_with_default_config():
    assert load_video_model(None).config == DEFAULT_CONFIG
