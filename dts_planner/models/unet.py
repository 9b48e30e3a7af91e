"""AVDC's video U-Net: guided-diffusion ``UNetModel`` with task tokens added to the time embedding.

Our own implementation; its state-dict keys and shapes equal AVDC's, so the ``unet.*`` weights of
the released checkpoints load with ``strict=True``.
"""

from __future__ import annotations

import torch
from torch import nn, Tensor

from dts_planner.models.configs import UNetConfig
from dts_planner.models.nn_blocks import (
    AttentionBlock, conv_nd, Downsample, GROUPS, ResBlock, timestep_embedding,
    TimestepEmbedSequential, Upsample, zero_init)
from dts_planner.models.perceiver import PerceiverResampler


class UNetModel(nn.Module):
    """Denoising U-Net over (B, C_in, [F,] H, W) -> (B, C_out, [F,] H, W).

    H and W must be divisible by ``2 ** (len(channel_mult) - 1)``. Text tokens (B, L, D) go
    through a Perceiver resampler, a Linear and a mean over latents (``embed_task``), and the
    result is added to the timestep embedding (no cross-attention). As the task embedding is
    the same at every denoising step, callers compute it once and pass it to ``forward``.
    """

    def __init__(self, in_channels: int, out_channels: int, model_channels: int,
                 num_res_blocks: int, channel_mult: tuple[int, ...],
                 attention_resolutions: tuple[int, ...], dims: int = 3,
                 num_head_channels: int = 32, task_token_channels: int = 512,
                 dropout: float = 0.0) -> None:
        """Build the encoder, middle and decoder exactly in AVDC's module order."""
        super().__init__()
        self.model_channels = model_channels
        emb = 4 * model_channels
        self.time_embed = nn.Sequential(
            nn.Linear(model_channels, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.task_attnpool = nn.Sequential(
            PerceiverResampler(dim=task_token_channels, depth=2),
            nn.Linear(task_token_channels, emb))

        def res_block(ch_in: int, ch_out: int) -> ResBlock:
            return ResBlock(ch_in, emb, ch_out, dims, dropout)

        def attention(ch: int) -> AttentionBlock:
            return AttentionBlock(ch, num_head_channels)

        ch = model_channels * channel_mult[0]
        self.input_blocks = nn.ModuleList(
            [TimestepEmbedSequential(conv_nd(dims, in_channels, ch, 3))])
        skip_channels, ds = [ch], 1
        for level, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                layers: list[nn.Module] = [res_block(ch, model_channels * mult)]
                ch = model_channels * mult
                if ds in attention_resolutions:
                    layers.append(attention(ch))
                self.input_blocks.append(TimestepEmbedSequential(*layers))
                skip_channels.append(ch)
            if level != len(channel_mult) - 1:
                self.input_blocks.append(TimestepEmbedSequential(Downsample(ch, dims)))
                skip_channels.append(ch)
                ds *= 2
        self.middle_block = TimestepEmbedSequential(
            res_block(ch, ch), attention(ch), res_block(ch, ch))
        self.output_blocks = nn.ModuleList()
        for level, mult in reversed(list(enumerate(channel_mult))):
            for i in range(num_res_blocks + 1):
                layers = [res_block(ch + skip_channels.pop(), model_channels * mult)]
                ch = model_channels * mult
                if ds in attention_resolutions:
                    layers.append(attention(ch))
                if level and i == num_res_blocks:
                    layers.append(Upsample(ch, dims))
                    ds //= 2
                self.output_blocks.append(TimestepEmbedSequential(*layers))
        self.out = nn.Sequential(nn.GroupNorm(GROUPS, ch), nn.SiLU(),
                                 zero_init(conv_nd(dims, ch, out_channels, 3)))

    @classmethod
    def from_config(cls, config: UNetConfig, in_channels: int, out_channels: int) -> UNetModel:
        """Build from a ``UNetConfig`` and the input/output channel counts."""
        return cls(in_channels, out_channels, config.model_channels, config.num_res_blocks,
                   config.channel_mult, config.attention_resolutions, config.dims,
                   config.num_head_channels, config.task_token_channels, config.dropout)

    def embed_task(self, task_embed: Tensor) -> Tensor:
        """Pool text tokens (B, L, D) into a task embedding (B, 4 * model_channels)."""
        return self.task_attnpool(task_embed).mean(dim=1)

    def forward(self, x: Tensor, t: Tensor, task_emb: Tensor) -> Tensor:
        """Map x (B, C_in, [F,] H, W), steps t (B,) and ``embed_task(text)`` to (B, C_out, ...)."""
        emb = self.time_embed(timestep_embedding(t, self.model_channels)) + task_emb
        skips = []
        h = x
        for block in self.input_blocks:
            h = block(h, emb)
            skips.append(h)
        h = self.middle_block(h, emb)
        for block in self.output_blocks:
            h = block(torch.cat([h, skips.pop()], dim=1), emb)
        return self.out(h)
