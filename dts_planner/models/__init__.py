"""Video model: AVDC-compatible U-Net, VideoDiffusionModel (a Denoiser), checkpoints, text.

Importing this package is light: text encoders load transformers/sentence-transformers lazily.
"""

from dts_planner.models.checkpoint import (
    check_state_dict, checkpoint_config, CheckpointError, DEFAULT_WEIGHTS, load_video_model,
    read_checkpoint, save_checkpoint, unet_state_dict)
from dts_planner.models.configs import (
    AVDC_BRIDGE, AVDC_METAWORLD, AVDC_THOR, DEFAULT_CONFIG, get_preset, PRESETS, TINY_CONFIG,
    UNetConfig, VideoModelConfig)
from dts_planner.models.text_encoders import (
    ClipTextEncoder, make_text_encoder, MiniLMTextEncoder, shared_text_encoder, TextEncoder,
    TextEncoderUnavailable)
from dts_planner.models.unet import UNetModel
from dts_planner.models.video_diffusion import (
    frames_to_model_space, image_to_cond, model_space_to_uint8, random_video_model,
    VideoDiffusionModel)

__all__ = [
    "AVDC_BRIDGE", "AVDC_METAWORLD", "AVDC_THOR", "check_state_dict", "checkpoint_config",
    "CheckpointError", "ClipTextEncoder", "DEFAULT_CONFIG", "DEFAULT_WEIGHTS",
    "frames_to_model_space", "get_preset", "image_to_cond", "load_video_model",
    "make_text_encoder", "MiniLMTextEncoder", "model_space_to_uint8", "PRESETS",
    "random_video_model", "read_checkpoint", "save_checkpoint", "shared_text_encoder",
    "TextEncoder", "TINY_CONFIG", "TextEncoderUnavailable", "UNetConfig", "UNetModel",
    "unet_state_dict", "VideoDiffusionModel", "VideoModelConfig",
]
