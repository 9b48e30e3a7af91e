"""Video-model checkpoints in AVDC's layout (released AVDC weights and our own).

Layout: ``{'step', 'model': {'model.unet.*'}, 'opt', 'ema': {'initted', 'step',
'online_model.model.unet.*', 'ema_model.model.unet.*'}, 'scaler', 'version'}``. Ours add
``'config'`` (plain dict of the ``VideoModelConfig``) and ``'extra'`` (plain data); AVDC's have no
config, so the caller names a preset. Files are read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
from pathlib import Path
import pickle
import re
from typing import Any, Mapping

import torch
from torch import Tensor

from dts_planner.common.device import resolve_device
from dts_planner.models.configs import get_preset, PRESETS, VideoModelConfig
from dts_planner.models.video_diffusion import VideoDiffusionModel

#: The embedded default model, loaded when no checkpoint path is given.
DEFAULT_WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "video_default.pt"
AVDC_VERSION = "0.0"
_EMA_PREFIX = "ema_model.model."
_ONLINE_PREFIX = "model."
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class CheckpointError(ValueError):
    """A video-model checkpoint is missing, unreadable or does not fit the model config."""


def save_checkpoint(path: str | os.PathLike, model: VideoDiffusionModel, *,
                    ema_model: VideoDiffusionModel | None = None, step: int = 0,
                    optimizer_state: Mapping[str, Any] | None = None,
                    extra: Mapping[str, Any] | None = None, shippable: bool = False) -> None:
    """Write ``model`` (online) and ``ema_model`` (EMA; default: ``model``) in AVDC's layout.

    ``optimizer_state`` goes under ``'opt'`` and ``extra`` (plain data) under ``'extra'``.
    ``shippable`` keeps only the EMA weights, as float16 (a quarter of the size; loading
    restores float32; no training resume).
    The file is written to a temporary name first, so a crash never leaves a torn checkpoint.
    """
    online = {_ONLINE_PREFIX + key: value.detach().cpu()
              for key, value in model.state_dict().items()}
    ema: dict[str, Any] = {"initted": torch.tensor([True]), "step": torch.tensor(step)}
    if not shippable:
        ema.update({"online_model." + key: value for key, value in online.items()})
    for key, value in (ema_model or model).state_dict().items():
        value = value.detach().cpu()
        ema[_EMA_PREFIX + key] = value.half() if shippable and value.is_floating_point() else value
    data: dict[str, Any] = {"step": step, "ema": ema, "scaler": None, "version": AVDC_VERSION,
                            "config": model.config.to_dict(), "extra": dict(extra or {})}
    if not shippable:
        data.update(model=online, opt=dict(optimizer_state) if optimizer_state else None)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    torch.save(data, partial)
    os.replace(partial, path)


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint file as plain data (``weights_only=True``, on the CPU).

    Every failure is one CheckpointError line: a file that needs pickle to rebuild objects
    (classes, functions) is refused naming those globals -- nothing in it runs.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"video model checkpoint not found: {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        refused = _refused_globals(path)
        if refused:
            raise CheckpointError(
                f"refused video model checkpoint {path}: it needs pickle to rebuild "
                f"{', '.join(refused)}, and checkpoints are read with torch.load(weights_only="
                "True), plain tensors and containers only") from None
        raise CheckpointError(_unreadable(path, error)) from None
    except Exception as error:   # torch raises many types for damaged files
        raise CheckpointError(_unreadable(path, error)) from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} holds a {type(data).__name__}, not a checkpoint dict")
    return data


def _refused_globals(path: Path) -> list[str]:
    """Globals a weights_only load refuses in ``path`` (found without unpickling), or []."""
    try:
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:   # not a torch.save zip: nothing to list
        return []


def _unreadable(path: Path, error: Exception) -> str:
    """One clean line (no ANSI escapes) for a checkpoint torch cannot read."""
    first = _ANSI.sub("", str(error)).strip().splitlines()
    return (f"cannot read video model checkpoint {path}: the file is corrupt, truncated or not "
            f"a torch.save checkpoint of plain tensors ({type(error).__name__}"
            f"{': ' + first[0] if first else ''})")


def unet_state_dict(checkpoint: Mapping[str, Any], use_ema: bool = True) -> dict[str, Tensor]:
    """Return the ``unet.*`` weights (float32) of the EMA (else online) part of a checkpoint."""
    sources = [("ema", _EMA_PREFIX), ("model", _ONLINE_PREFIX)]
    for entry, prefix in sources if use_ema else sources[1:]:
        weights = checkpoint.get(entry)
        if not isinstance(weights, Mapping):
            continue
        state = {key[len(prefix):]: value.float() if value.is_floating_point() else value
                 for key, value in weights.items() if key.startswith(prefix + "unet.")}
        if state:
            return state
    raise CheckpointError(
        "checkpoint has no video U-Net weights: expected keys 'ema_model.model.unet.*' in "
        f"'ema' or 'model.unet.*' in 'model' (AVDC layout); top-level keys: {sorted(checkpoint)}")


def checkpoint_config(checkpoint: Mapping[str, Any], preset: str | None = None
                      ) -> VideoModelConfig:
    """Return the named ``preset`` if given, else the checkpoint's own ``'config'``."""
    if preset is not None:
        return get_preset(preset)
    if isinstance(checkpoint.get("config"), Mapping):
        try:
            return VideoModelConfig.from_dict(checkpoint["config"])
        except (KeyError, TypeError, ValueError) as error:
            raise CheckpointError(f"checkpoint 'config' entry is invalid: {error}") from error
    raise CheckpointError(
        "checkpoint has no 'config' entry (an AVDC checkpoint?): pass preset= one of "
        f"{sorted(PRESETS)} (avdc_metaworld for metaworld/model-24.pt, avdc_thor for "
        "ithor/model-*.pt, avdc_bridge for bridge/model-42.pt)")


def check_state_dict(model: torch.nn.Module, state: Mapping[str, Tensor]) -> None:
    """Raise CheckpointError listing missing/unexpected keys and shape mismatches, if any."""
    expected = model.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    mismatched = [f"{key}: checkpoint {tuple(state[key].shape)} vs model "
                  f"{tuple(expected[key].shape)}"
                  for key in expected if key in state and state[key].shape != expected[key].shape]
    if not (missing or unexpected or mismatched):
        return
    problems = [f"{len(items)} {kind} (first: {', '.join(items[:3])})"
                for kind, items in (("missing keys", missing), ("unexpected keys", unexpected),
                                    ("shape mismatches", mismatched)) if items]
    raise CheckpointError("checkpoint weights do not fit the model config: " + "; ".join(problems)
                          + ". Check that the preset/config matches how the checkpoint was "
                          "trained (image size, widths, dims, text encoder).")


def load_video_model(path: str | os.PathLike | None = None, device: str | torch.device = "cpu",
                     preset: str | None = None, use_ema: bool = True) -> VideoDiffusionModel:
    """Load a VideoDiffusionModel in eval mode; ``path=None`` loads the embedded default.

    ``preset`` names the config of a checkpoint without one (AVDC's) or overrides the stored
    one. Every failure (missing/corrupt file, wrong config) raises ``CheckpointError``.
    """
    if path is None:
        path = DEFAULT_WEIGHTS
        if not path.is_file():
            raise CheckpointError(
                f"the embedded default video model is missing ({path}); train it with the "
                "dts_planner training command or pass the path of a checkpoint")
    target = resolve_device(device)
    checkpoint = read_checkpoint(path)
    state = unet_state_dict(checkpoint, use_ema)
    config = checkpoint_config(checkpoint, preset)
    with torch.device("meta"):   # no random init: the checkpoint's tensors are assigned
        model = VideoDiffusionModel(config)
    try:
        check_state_dict(model, state)
    except CheckpointError as error:
        raise CheckpointError(f"{path} ({config.summary()}): {error}") from None
    model.load_state_dict(state, strict=True, assign=True)
    return model.to(target).eval()
