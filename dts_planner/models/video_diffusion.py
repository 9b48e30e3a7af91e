"""VideoDiffusionModel: the U-Net under AVDC's conventions, as a sampler-core ``Denoiser``.

Model space: the future video x (B, F*3, H, W) in [-1, 1], channel index ``f * 3 + c``;
the conditioning frame (B, 3, H, W) stays in [0, 1]; T = 100 cosine schedule, v-prediction.
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn, Tensor

from dts_planner.diffusion.schedule import NoiseSchedule
from dts_planner.models.configs import VideoModelConfig
from dts_planner.models.preprocessing import model_space_to_uint8
from dts_planner.models.unet import UNetModel


class VideoDiffusionModel(nn.Module):
    """Predicts v for the ``config.num_frames`` future frames given the current frame and text.

    With ``dims=3`` (AVDC) the conditioning frame is repeated over the frames and concatenated on
    channels, (B, 6, F, H, W); with ``dims=2`` all frames and the conditioning frame are stacked
    as channels, (B, 3F + 3, H, W). ``guidance_scale`` w > 0 applies AVDC's classifier-free
    guidance, (1 + w) v(text) - w v(zero text), in one doubled batch.

    The cond is a dict with ``image`` and the text tokens ``task_embed`` (what training passes);
    ``make_cond`` adds the pooled task embeddings ``task`` (and ``task_uncond`` for guidance)
    so that sampling pools the text once per plan instead of once per step.
    """

    prediction_type = "v_prediction"
    schedule = NoiseSchedule.avdc()

    def __init__(self, config: VideoModelConfig) -> None:
        """Build the U-Net for ``config``; weights are random until loaded."""
        super().__init__()
        self.config = config
        self.guidance_scale = config.guidance_scale
        if config.unet.dims == 3:
            in_channels, out_channels = 6, 3
        else:
            in_channels, out_channels = 3 * config.num_frames + 3, 3 * config.num_frames
        self.unet = UNetModel.from_config(config.unet, in_channels, out_channels)

    def noise_shape(self, batch: int) -> tuple[int, ...]:
        """Shape (B, F*3, H, W) of the model-space video (and of the initial noise)."""
        height, width = self.config.image_size
        return (batch, 3 * self.config.num_frames, height, width)

    def make_cond(self, image: Tensor, task_embed: Tensor) -> dict[str, Tensor]:
        """Conditioning from ``image`` (B, 3, H, W) float in [0, 1] and text tokens (B, L, D).

        Returns ``image``, ``task_embed`` and the pooled (B, E) task embedding ``task``, plus
        ``task_uncond`` (that of zero text) if guidance is on.
        """
        if image.dim() != 4 or tuple(image.shape[1:]) != (3, *self.config.image_size):
            raise ValueError(f"conditioning image must be (B, 3, {self.config.image_size[0]}, "
                             f"{self.config.image_size[1]}) floats in [0, 1], "
                             f"got {tuple(image.shape)}")
        if task_embed.dim() != 3 or task_embed.shape[-1] != self.config.text_dim:
            raise ValueError(f"task embedding must be (B, L, {self.config.text_dim}) "
                             f"({self.config.text_encoder} text encoder), "
                             f"got {tuple(task_embed.shape)}")
        cond = {"image": image, "task_embed": task_embed, "task": self.unet.embed_task(task_embed)}
        if self.guidance_scale:
            cond["task_uncond"] = self.unet.embed_task(torch.zeros_like(task_embed))
        return cond

    def forward(self, x_t: Tensor, t: Tensor, cond: Mapping[str, Tensor]) -> Tensor:
        """Predict v from x_t (B, F*3, H, W) at integer steps t (B,) (or one scalar step)."""
        t = t.expand(x_t.shape[0]) if t.dim() == 0 else t
        image = cond["image"]
        task = cond["task"] if "task" in cond else self.unet.embed_task(cond["task_embed"])
        if not self.guidance_scale:
            return self._predict(x_t, t, image, task)
        uncond = (cond["task_uncond"] if "task_uncond" in cond
                  else self.unet.embed_task(torch.zeros_like(cond["task_embed"])))
        both = self._predict(torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([image, image]),
                             torch.cat([task, uncond]))
        with_text, without_text = both.chunk(2)
        return (1.0 + self.guidance_scale) * with_text - self.guidance_scale * without_text

    def _predict(self, x_t: Tensor, t: Tensor, image: Tensor, task: Tensor) -> Tensor:
        if self.config.unet.dims == 2:
            return self.unet(torch.cat([x_t, image], dim=1), t, task)
        batch, _, height, width = x_t.shape
        video = x_t.view(batch, -1, 3, height, width).transpose(1, 2)       # (B, 3, F, H, W)
        frames = image[:, :, None].expand(-1, -1, video.shape[2], -1, -1)
        out = self.unet(torch.cat([video, frames], dim=1), t, task)
        return out.transpose(1, 2).reshape(batch, -1, height, width)

    to_uint8_frames = staticmethod(model_space_to_uint8)


def random_video_model(config: VideoModelConfig, seed: int = 0) -> VideoDiffusionModel:
    """Build a random-weight model for tests and benchmarks (eval mode, no grad).

    The U-Net's zero-initialised output layers (guided-diffusion's ``zero_module``) are
    re-drawn with fan-in scaling, else a fresh model predicts v = 0 for every input.
    """
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = VideoDiffusionModel(config).eval()
        with torch.no_grad():
            for parameter in model.parameters():
                if parameter.dim() > 1 and not parameter.any():
                    parameter.normal_(0.0, parameter[0].numel() ** -0.5)
    return model.requires_grad_(False)
