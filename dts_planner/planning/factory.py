"""The one place that builds a VideoPlanner (the planner node, the evaluation and the benches).

`model_path` (empty = the embedded default) is loaded, with `model_preset` as its config when the
checkpoint has none (AVDC's releases); `model_preset` without `model_path` builds a RANDOM-weight
model of that architecture (tests, benchmarks). Nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import replace
import hashlib
from pathlib import Path

import torch

from dts_planner.calibration import Calibration, CalibrationError, locate_calibration
from dts_planner.diffusion import Sampler
from dts_planner.models import (
    DEFAULT_WEIGHTS, get_preset, load_video_model, random_video_model, shared_text_encoder)
from dts_planner.planning.video_planner import VideoPlanner


def check_model_source(model_path: str, preset: str) -> None:
    """Raise ValueError with what to do when the model to load does not exist."""
    if preset:
        get_preset(preset)
    elif model_path and not Path(model_path).is_file():
        raise ValueError(f"model_path '{model_path}' is not a file")
    elif not model_path and not DEFAULT_WEIGHTS.is_file():
        raise ValueError(
            f"the embedded default video model is missing ({DEFAULT_WEIGHTS}); set model_path "
            "to a checkpoint (or model_preset to a preset for a random-weight test model)")


def model_id(path: Path) -> str:
    """'<file stem>@<first 8 hex of its sha256>' identifies a checkpoint in diagnostics."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return f"{path.stem}@{digest.hexdigest()[:8]}"


def find_model_calibration(model_path: str, preset: str, calibration_dir: str,
                           device: str) -> tuple[Calibration | None, str]:
    """Find the calibration of the model to load (None if there is none) and a one-line note.

    Looked up by the checkpoint's sha256 in `calibration_dir` (if given), then next to the
    checkpoint (`dts_planner.calibration.find_calibration`); random-weight models have none.
    """
    if preset and not model_path:
        return None, f"none for a random-weight {preset} model"
    path = Path(model_path) if model_path else DEFAULT_WEIGHTS
    try:
        return locate_calibration(path, None, [calibration_dir] if calibration_dir else (),
                                  device)
    except CalibrationError as error:
        return None, str(error)


def build_planner(model_path: str, preset: str, image_size: int, text_encoder: str,
                  sampler: Sampler, device: torch.device) -> tuple[VideoPlanner, str]:
    """Build the VideoPlanner and its model id; ValueError/CheckpointError when it cannot."""
    if preset and not model_path:
        config = get_preset(preset)
        if image_size:
            config = replace(config, image_size=(image_size, image_size))
        model = random_video_model(config)
        name = f"random:{preset}@{config.image_size[0]}x{config.image_size[1]}"
    else:
        path = Path(model_path) if model_path else DEFAULT_WEIGHTS
        model = load_video_model(path, device, preset=preset or None)
        name = model_id(path)
        size = tuple(model.config.image_size)
        if image_size and size != (image_size, image_size):
            raise ValueError(f"image_size {image_size} does not match the checkpoint's {size}")
    encoder = shared_text_encoder(
        model.config.text_encoder if text_encoder == "default" else text_encoder, str(device))
    return VideoPlanner(model, encoder, sampler, device=device), name
