"""Video-model configurations: AVDC's released presets and the small embedded default.

Configs are plain frozen dataclasses that round-trip through plain dicts (``to_dict`` /
``from_dict``), so checkpoints store them without pickled classes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal, Mapping

TextEncoderName = Literal["clip", "minilm"]
Preprocess = Literal["crop_resize", "center_crop", "resize"]


@dataclass(frozen=True)
class UNetConfig:
    """Width and depth of the guided-diffusion U-Net (AVDC's ``UNetModel`` arguments).

    ``attention_resolutions`` are downsampling factors (1 = full resolution) with attention; the
    middle block always has it. ``dims=3`` is AVDC's video U-Net (frames on their own axis),
    ``dims=2`` folds the frames into channels (5-15x cheaper on a CPU).
    """

    model_channels: int
    num_res_blocks: int
    channel_mult: tuple[int, ...]
    attention_resolutions: tuple[int, ...]
    dims: Literal[2, 3] = 3
    num_head_channels: int = 32
    task_token_channels: int = 512   # width of the text tokens fed to the resampler
    dropout: float = 0.0


@dataclass(frozen=True)
class VideoModelConfig:
    """A video diffusion model: it predicts ``num_frames`` future RGB frames of ``image_size``.

    ``preprocess`` says how a camera image becomes the conditioning frame: ``crop_resize``
    (largest centred crop of the model's aspect ratio, then resize), ``center_crop`` (AVDC
    Meta-World: centred crop of the model size, no resize) or ``resize`` (AVDC iTHOR/Bridge).
    """

    image_size: tuple[int, int]          # (H, W) pixels
    num_frames: int                      # future frames F (the conditioning frame excluded)
    unet: UNetConfig
    text_encoder: TextEncoderName = "clip"
    preprocess: Preprocess = "crop_resize"
    guidance_scale: float = 0.0          # classifier-free guidance weight w (0 = off)

    @property
    def text_dim(self) -> int:
        """Width D of the text tokens (B, L, D) the model expects."""
        return self.unet.task_token_channels

    def summary(self) -> str:
        """One line for logs and errors, e.g. ``64x64, 7 frames, 2D U-Net width 64, minilm``."""
        height, width = self.image_size
        return (f"{height}x{width}, {self.num_frames} frames, {self.unet.dims}D U-Net width "
                f"{self.unet.model_channels} x{self.unet.channel_mult}, {self.text_encoder} text")

    def to_dict(self) -> dict[str, Any]:
        """Return plain Python data (lists, numbers, strings) for a checkpoint."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VideoModelConfig:
        """Rebuild from ``to_dict`` output (lists become tuples)."""
        unet = {key: tuple(value) if isinstance(value, list) else value
                for key, value in data["unet"].items()}
        top = {key: value for key, value in data.items() if key != "unet"}
        top["image_size"] = tuple(top["image_size"])
        return cls(unet=UNetConfig(**unet), **top)


def _avdc(image_size: tuple[int, int], preprocess: Preprocess, num_frames: int = 7,
          **unet: Any) -> VideoModelConfig:
    """Return an AVDC release config; ``num_frames`` = its ``sample_per_seq`` - 1."""
    return VideoModelConfig(image_size=image_size, num_frames=num_frames,
                            unet=UNetConfig(**unet), text_encoder="clip", preprocess=preprocess)


#: AVDC ``UnetMW``: Meta-World, 128x128 centre crop of the 320x240 render (201,087,649 params).
AVDC_METAWORLD = _avdc((128, 128), "center_crop", model_channels=128, num_res_blocks=2,
                       channel_mult=(1, 2, 3, 4, 5), attention_resolutions=(8, 16))
#: AVDC ``UnetThor``: iTHOR navigation at 64x64 (108,837,665 params).
AVDC_THOR = _avdc((64, 64), "resize", model_channels=128, num_res_blocks=3,
                  channel_mult=(1, 2, 4), attention_resolutions=(4, 8))
#: AVDC ``UnetBridge``: Bridge real-robot video at 48x64, 6 future frames (``train_bridge.py``:
#: ``sample_per_seq = 7`` including the conditioning frame) (165,638,177 params).
AVDC_BRIDGE = _avdc((48, 64), "resize", num_frames=6, model_channels=160, num_res_blocks=3,
                    channel_mult=(1, 2, 4), attention_resolutions=(4, 8))

#: The small embedded default: 48x48, 7 future frames folded into channels, MiniLM text;
#: 7.7M params (4.8M of them the text resampler), 0.93 GFLOP per forward at batch 1 (1.67 at
#: 64x64: the same U-Net ran at 64x64 until it missed the 20 ms CPU target).
DEFAULT_CONFIG = VideoModelConfig(
    image_size=(48, 48), num_frames=7,
    unet=UNetConfig(model_channels=32, num_res_blocks=1, channel_mult=(1, 1, 2, 4),
                    attention_resolutions=(4, 8), dims=2, task_token_channels=384),
    text_encoder="minilm", preprocess="crop_resize")

#: A tiny U-Net (8x8, 2 frames, width 32, text tokens of 8 channels: random only) for tests and
#: seconds-long smoke runs (``bench report --tiny``); with random weights only.
TINY_CONFIG = VideoModelConfig(
    image_size=(8, 8), num_frames=2, text_encoder="minilm",
    unet=UNetConfig(model_channels=32, num_res_blocks=1, channel_mult=(1,),
                    attention_resolutions=(), dims=2, num_head_channels=32,
                    task_token_channels=8))

PRESETS: dict[str, VideoModelConfig] = {
    "avdc_metaworld": AVDC_METAWORLD,
    "avdc_thor": AVDC_THOR,
    "avdc_bridge": AVDC_BRIDGE,
    "default": DEFAULT_CONFIG,
}


def get_preset(name: str) -> VideoModelConfig:
    """Return the preset called ``name`` (see ``PRESETS``), or raise a ValueError listing them."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown model preset {name!r}; choose one of {sorted(PRESETS)}") \
            from None
