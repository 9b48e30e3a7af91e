"""U-Net building blocks named exactly like AVDC's guided-diffusion modules (state-dict keys).

Tensors are (B, C, H, W) for ``dims=2`` and (B, C, F, H, W) for ``dims=3``. In 3D the frame
axis F is never resampled: convolutions are factorised (per-frame 2D conv, then a temporal 1D
conv) and attention runs over the pixels of each frame separately.
"""

from __future__ import annotations

from diffusers.models.embeddings import get_timestep_embedding
from torch import nn, Tensor
import torch.nn.functional as F

GROUPS = 32  # GroupNorm groups: every width must be a multiple of this


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal embedding of integer steps ``t`` (B,) -> (B, dim): cosines then sines.

    guided-diffusion's (AVDC's) embedding, frequencies exp(-log(max_period) i / (dim // 2)):
    diffusers' ``get_timestep_embedding`` with ``flip_sin_to_cos=True, downscale_freq_shift=0``.
    """
    return get_timestep_embedding(t, dim, flip_sin_to_cos=True, downscale_freq_shift=0,
                                  max_period=max_period)


class PseudoConv3d(nn.Module):
    """Factorised 3D conv on (B, C, F, H, W): per-frame ``spatial_conv``, then ``temporal_conv``.

    The spatial conv may stride in space only; the temporal conv (kernel k, zero padding k // 2)
    exists for k > 1 and starts as the identity.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 spatial_stride: int = 1) -> None:
        """Build the two convolutions (no temporal one for 1x1 kernels)."""
        super().__init__()
        self.spatial_conv = nn.Conv2d(in_channels, out_channels, kernel_size,
                                      stride=spatial_stride, padding=kernel_size // 2)
        self.temporal_conv = None
        if kernel_size > 1:
            self.temporal_conv = nn.Conv1d(out_channels, out_channels, kernel_size)
            nn.init.dirac_(self.temporal_conv.weight)
            nn.init.zeros_(self.temporal_conv.bias)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C_in, F, H, W) -> (B, C_out, F, H', W')."""
        batch, frames = x.shape[0], x.shape[2]
        h = self.spatial_conv(x.transpose(1, 2).flatten(0, 1))
        h = h.unflatten(0, (batch, frames)).transpose(1, 2)
        if self.temporal_conv is None:
            return h
        # a Conv1d over F for every pixel == a (k, 1) Conv2d over (F, H*W)
        weight = self.temporal_conv.weight.unsqueeze(-1)
        padding = (weight.shape[2] // 2, 0)
        out = F.conv2d(h.flatten(3), weight, self.temporal_conv.bias, padding=padding)
        return out.unflatten(3, h.shape[3:])


def conv_nd(dims: int, in_channels: int, out_channels: int, kernel_size: int,
            stride: int = 1) -> nn.Module:
    """Same-padded convolution for 1D, 2D or (factorised) 3D signals; 3D strides space only."""
    if dims == 3:
        return PseudoConv3d(in_channels, out_channels, kernel_size, spatial_stride=stride)
    conv = {1: nn.Conv1d, 2: nn.Conv2d}[dims]
    return conv(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2)


def zero_init(module: nn.Module) -> nn.Module:
    """Zero all parameters of ``module`` (last layer of a residual branch) and return it."""
    for parameter in module.parameters():
        nn.init.zeros_(parameter)
    return module


class Downsample(nn.Module):
    """Strided 3x3 conv halving H and W (never F)."""

    def __init__(self, channels: int, dims: int) -> None:
        """Build ``op``, the strided convolution."""
        super().__init__()
        self.op = conv_nd(dims, channels, channels, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, [F,] H, W) -> (B, C, [F,] H/2, W/2)."""
        return self.op(x)


class Upsample(nn.Module):
    """Nearest-neighbour doubling of H and W (never F), then a 3x3 conv."""

    def __init__(self, channels: int, dims: int) -> None:
        """Build ``conv``."""
        super().__init__()
        self.conv = conv_nd(dims, channels, channels, 3)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, [F,] H, W) -> (B, C, [F,] 2H, 2W)."""
        height, width = x.shape[-2:]
        size = (*x.shape[2:-2], 2 * height, 2 * width)
        return self.conv(F.interpolate(x, size=size, mode="nearest"))


class ResBlock(nn.Module):
    """Residual block; the time(+task) embedding is added between its two convolutions."""

    def __init__(self, channels: int, emb_channels: int, out_channels: int, dims: int,
                 dropout: float = 0.0) -> None:
        """Build in/emb/out layers and a 1x1 skip conv when the width changes."""
        super().__init__()
        self.in_layers = nn.Sequential(
            nn.GroupNorm(GROUPS, channels), nn.SiLU(), conv_nd(dims, channels, out_channels, 3))
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_channels, out_channels))
        self.out_layers = nn.Sequential(
            nn.GroupNorm(GROUPS, out_channels), nn.SiLU(), nn.Dropout(dropout),
            zero_init(conv_nd(dims, out_channels, out_channels, 3)))
        self.skip_connection = (nn.Identity() if out_channels == channels
                                else conv_nd(dims, channels, out_channels, 1))

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        """Map x (B, C, ...) and emb (B, E) to (B, C_out, ...)."""
        h = self.in_layers(x)
        h = h + self.emb_layers(emb).view(*h.shape[:2], *([1] * (h.dim() - 2)))
        return self.skip_connection(x) + self.out_layers(h)


class AttentionBlock(nn.Module):
    """Self-attention over the pixels of each frame (heads of ``num_head_channels`` channels).

    The ``qkv`` output is laid out head by head, each head holding its q, k and v (AVDC's
    "legacy" order); normalisation, like attention, sees one frame at a time.
    """

    def __init__(self, channels: int, num_head_channels: int) -> None:
        """Build ``norm``, ``qkv`` and ``proj_out``."""
        super().__init__()
        if channels % num_head_channels:
            raise ValueError(f"{channels} channels do not split into heads of "
                             f"{num_head_channels}")
        self.num_heads = channels // num_head_channels
        self.norm = nn.GroupNorm(GROUPS, channels)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.proj_out = zero_init(nn.Conv1d(channels, channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, [F,] H, W) -> same shape."""
        if x.dim() == 5:   # frames join the batch
            tokens = x.transpose(1, 2).flatten(0, 1).flatten(2)
        else:
            tokens = x.flatten(2)
        n, channels, length = tokens.shape
        qkv = self.qkv(self.norm(tokens)).view(n * self.num_heads, -1, length)
        q, k, v = qkv.transpose(1, 2).chunk(3, dim=-1)
        h = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(n, channels, length)
        out = tokens + self.proj_out(h)
        if x.dim() == 5:
            return out.view(x.shape[0], x.shape[2], channels, *x.shape[3:]).transpose(1, 2)
        return out.view(x.shape)


class TimestepEmbedSequential(nn.Sequential):
    """Sequential that also passes the embedding to its ResBlocks."""

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        """Run the layers in order; ResBlocks get ``emb`` (B, E) too."""
        for layer in self:
            x = layer(x, emb) if isinstance(layer, ResBlock) else layer(x)
        return x
