"""VideoPlanner: current camera image + instruction -> imagined future frames (a Plan)."""

from __future__ import annotations

from dataclasses import dataclass
import time

import numpy as np
import torch

from dts_planner.common.device import resolve_device
from dts_planner.diffusion import Sampler, SamplerStats, StepCallback
from dts_planner.models.text_encoders import TextEncoder
from dts_planner.models.preprocessing import image_to_cond, prepare_image
from dts_planner.models.video_diffusion import VideoDiffusionModel


@dataclass
class Plan:
    """An imagined future: ``frames`` (F, H, W, 3) uint8 RGB at the model's resolution.

    The conditioning frame is not included. ``sampling_time_s`` is the sampler's wall time.
    """

    frames: np.ndarray
    stats: SamplerStats
    sampling_time_s: float


class VideoPlanner:
    """Glue of a video model, its text encoder and a sampler; ``sampler`` may be swapped anytime.

    A NaN/Inf model output makes the sampler raise ``NonFiniteOutputError``, which ``plan``
    lets through unchanged.
    """

    def __init__(self, model: VideoDiffusionModel, text_encoder: TextEncoder, sampler: Sampler,
                 device: str | torch.device = "cpu", allow_cpu_fallback: bool = False) -> None:
        """Move ``model`` to ``device`` (an absent CUDA device raises unless falling back)."""
        if text_encoder.dim != model.config.text_dim:
            raise ValueError(f"text encoder gives {text_encoder.dim}-d tokens but the model "
                             f"expects {model.config.text_dim}-d ({model.config.text_encoder})")
        self.device = resolve_device(device, allow_cpu_fallback)
        self.model = model.to(self.device).eval()
        self.text_encoder = text_encoder
        self.sampler = sampler

    def plan(self, image: np.ndarray, instruction: str, seed: int | None = None,
             callback: StepCallback | None = None) -> Plan:
        """Imagine ``instruction`` carried out from ``image`` (H, W, 3) uint8 RGB, any size.

        ``seed`` fixes the initial noise (and any sampler noise); None draws a fresh seed.
        ``callback`` is the sampler's per-model-call hook (progress; raising in it, e.g.
        SamplingCancelled, stops sampling and propagates).
        """
        if not isinstance(instruction, str) or not instruction.strip():
            raise ValueError(f"instruction must be a non-empty string, got {instruction!r}")
        config = self.model.config
        frame = prepare_image(image, config.image_size, config.preprocess)
        generator = torch.Generator(self.device)
        if seed is None:
            generator.seed()
        else:
            generator.manual_seed(seed)
        with torch.inference_mode():
            cond = self.model.make_cond(
                image_to_cond(torch.from_numpy(frame)[None]).to(self.device),
                self.text_encoder.encode([instruction]).to(self.device))
            noise = torch.randn(self.model.noise_shape(1), generator=generator,
                                device=self.device)
            start = time.perf_counter()
            result = self.sampler.sample(self.model, noise, cond, generator=generator,
                                         callback=callback)
            frames = self.model.to_uint8_frames(result.sample)[0]   # waits for the device
            elapsed = time.perf_counter() - start
        return Plan(frames=frames, stats=result.stats, sampling_time_s=elapsed)
