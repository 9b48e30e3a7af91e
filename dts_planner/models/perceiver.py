"""Perceiver resampler (Imagen/Flamingo style) that pools text tokens into a fixed set of latents.

Parameter names follow AVDC's ``imagen.PerceiverResampler`` so its checkpoints load unchanged.
"""

from __future__ import annotations

import torch
from torch import nn, Tensor
import torch.nn.functional as F


class GainLayerNorm(nn.Module):
    """LayerNorm over the last axis with a learned gain ``g`` and no bias."""

    def __init__(self, dim: int) -> None:
        """Gain starts at one."""
        super().__init__()
        self.g = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        """(..., dim) -> (..., dim)."""
        return F.layer_norm(x, x.shape[-1:], self.g, None, 1e-5)


def feed_forward(dim: int, mult: int = 4) -> nn.Sequential:
    """Norm, Linear to ``mult * dim``, GELU, norm, Linear back; no biases."""
    hidden = dim * mult
    return nn.Sequential(GainLayerNorm(dim), nn.Linear(dim, hidden, bias=False), nn.GELU(),
                         GainLayerNorm(hidden), nn.Linear(hidden, dim, bias=False))


class PerceiverAttention(nn.Module):
    """Latents attend to [tokens, latents] with L2-normalised q/k scaled by learned gains."""

    def __init__(self, dim: int, dim_head: int = 64, heads: int = 8, scale: float = 8.0) -> None:
        """Build norms, projections and per-channel q/k scales."""
        super().__init__()
        self.heads, self.scale = heads, scale
        inner = dim_head * heads
        self.norm = nn.LayerNorm(dim)
        self.norm_latents = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, 2 * inner, bias=False)
        self.q_scale = nn.Parameter(torch.ones(dim_head))
        self.k_scale = nn.Parameter(torch.ones(dim_head))
        self.to_out = nn.Sequential(nn.Linear(inner, dim, bias=False), nn.LayerNorm(dim))

    def forward(self, tokens: Tensor, latents: Tensor) -> Tensor:
        """Map tokens (B, L, dim) and latents (B, N, dim) to a latent update (B, N, dim)."""
        tokens, latents = self.norm(tokens), self.norm_latents(latents)
        q = self.to_q(latents)
        k, v = self.to_kv(torch.cat([tokens, latents], dim=1)).chunk(2, dim=-1)
        q, k, v = (s.unflatten(-1, (self.heads, -1)).transpose(1, 2) for s in (q, k, v))
        q = F.normalize(q, dim=-1) * self.q_scale
        k = F.normalize(k, dim=-1) * self.k_scale
        out = F.scaled_dot_product_attention(q, k, v, scale=self.scale)
        return self.to_out(out.transpose(1, 2).flatten(2))


class PerceiverResampler(nn.Module):
    """Text tokens (B, L, dim) -> latents (B, num_latents_mean_pooled + num_latents, dim).

    Tokens get a learned position embedding; extra latents come from the mean token.
    """

    def __init__(self, dim: int, depth: int = 2, dim_head: int = 64, heads: int = 8,
                 num_latents: int = 64, num_latents_mean_pooled: int = 4,
                 max_seq_len: int = 512, ff_mult: int = 4) -> None:
        """Build position embedding, latents, mean-pool projection and ``depth`` layers."""
        super().__init__()
        self.pos_emb = nn.Embedding(max_seq_len, dim)
        self.latents = nn.Parameter(torch.randn(num_latents, dim))
        self.to_latents_from_mean_pooled_seq = nn.Sequential(
            GainLayerNorm(dim), nn.Linear(dim, dim * num_latents_mean_pooled),
            nn.Unflatten(-1, (num_latents_mean_pooled, dim)))
        self.layers = nn.ModuleList(
            nn.ModuleList([PerceiverAttention(dim, dim_head, heads), feed_forward(dim, ff_mult)])
            for _ in range(depth))

    def forward(self, tokens: Tensor) -> Tensor:
        """(B, L, dim) with L <= max_seq_len -> (B, N, dim)."""
        length, max_len = tokens.shape[1], self.pos_emb.num_embeddings
        if length > max_len:
            raise ValueError(f"text has {length} tokens; the resampler takes at most {max_len}")
        with_pos = tokens + self.pos_emb.weight[:length]
        latents = torch.cat([self.to_latents_from_mean_pooled_seq(tokens.mean(dim=1)),
                             self.latents.expand(tokens.shape[0], -1, -1)], dim=1)
        for attention, ff in self.layers:
            latents = attention(with_pos, latents) + latents
            latents = ff(latents) + latents
        return latents
