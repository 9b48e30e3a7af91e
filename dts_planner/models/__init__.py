"""Video model: AVDC-compatible U-Net, VideoDiffusionModel (a Denoiser), checkpoints, text.

Importing this package is light: configs, image preprocessing and the text-encoder front load
at once (transformers only when an encoder is built); the networks and checkpoints, which load
diffusers, on first use of one of their names. An action predictor that needs only the image
conversions never loads diffusers.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from dts_planner.models.configs import (
    AVDC_BRIDGE, AVDC_METAWORLD, AVDC_THOR, DEFAULT_CONFIG, get_preset, PRESETS, TINY_CONFIG,
    UNetConfig, VideoModelConfig)
from dts_planner.models.preprocessing import (
    frames_to_model_space, image_to_cond, model_space_to_uint8)
from dts_planner.models.text_encoders import (
    ClipTextEncoder, make_text_encoder, MiniLMTextEncoder, shared_text_encoder, TextEncoder,
    TextEncoderUnavailable)

_LAZY = {
    **dict.fromkeys(("check_state_dict", "checkpoint_config", "CheckpointError",
                     "DEFAULT_WEIGHTS", "load_video_model", "read_checkpoint", "save_checkpoint",
                     "unet_state_dict"), "checkpoint"),
    "UNetModel": "unet",
    "random_video_model": "video_diffusion", "VideoDiffusionModel": "video_diffusion",
}

__all__ = [
    "AVDC_BRIDGE", "AVDC_METAWORLD", "AVDC_THOR", "ClipTextEncoder", "DEFAULT_CONFIG",
    "frames_to_model_space", "get_preset", "image_to_cond", "make_text_encoder",
    "MiniLMTextEncoder", "model_space_to_uint8", "PRESETS", "shared_text_encoder",
    "TextEncoder", "TINY_CONFIG", "TextEncoderUnavailable", "UNetConfig", "VideoModelConfig",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    """Import the networks and checkpoints on first use (PEP 562)."""
    if name in _LAZY:
        return getattr(import_module(f"dts_planner.models.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
