"""GCP-style goal-conditioned diffusion policy: (goal image[, image], proprioception) -> actions.

Small conv trunks (GroupNorm, spatial softmax keypoints) encode the goal frame and, optionally
(``use_obs_image``, GCP), the current observation; their features, plus optionally the hand
position (``use_hand_pos``) and the last commanded gripper effort (``use_gripper``), as Chi et
al.'s Diffusion Policy takes proprioception, condition a 1D temporal U-Net through FiLM.
Trained with diffusers' DDPMScheduler (epsilon, squaredcos_cap_v2), sampled with DDIMScheduler.
Actions are assumed already in [-1, 1] (Meta-World's action box).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import cached_property
import math
import os
from pathlib import Path
from typing import Any, TYPE_CHECKING

import torch
from torch import nn
import torch.nn.functional as F

if TYPE_CHECKING:
    from diffusers import DDIMScheduler, DDPMScheduler


@dataclass
class DiffusionPolicyConfig:
    """Sizes of the policy; stored as a plain dict next to the weights."""

    image_size: int = 64
    action_dim: int = 4
    horizon: int = 16
    num_execute: int = 8
    encoder_channels: tuple[int, ...] = (16, 32, 64)
    keypoints: int = 16
    feature_dim: int = 64
    use_hand_pos: bool = True
    use_obs_image: bool = True
    use_gripper: bool = False
    encoder_strides: tuple[int, ...] = ()
    encoder_pool: bool = False
    aux_goal_state: bool = False
    down_dims: tuple[int, ...] = (32, 64, 128)
    kernel_size: int = 5
    groups: int = 8
    step_embed_dim: int = 64
    train_timesteps: int = 100
    beta_schedule: str = "squaredcos_cap_v2"
    inference_steps: int = 8

    def to_dict(self) -> dict:
        """Plain dict (lists instead of tuples) for a weights_only checkpoint."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> DiffusionPolicyConfig:
        """Inverse of `to_dict`."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


class ResidualBlock2d(nn.Module):
    """Two 3x3 convolutions with GroupNorm and a skip connection."""

    def __init__(self, channels: int, groups: int) -> None:
        """Create the block for `channels` feature maps."""
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1), nn.GroupNorm(groups, channels),
            nn.Mish(), nn.Conv2d(channels, channels, 3, padding=1),
            nn.GroupNorm(groups, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        return F.mish(x + self.body(x))


class SpatialSoftmax(nn.Module):
    """Expected (x, y) image position of each of K learned keypoint maps, in [-1, 1]."""

    def __init__(self, channels: int, keypoints: int) -> None:
        """Project `channels` feature maps to `keypoints` heat maps."""
        super().__init__()
        self.project = nn.Conv2d(channels, keypoints, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, 2K) keypoint coordinates."""
        heat = self.project(x)
        batch, keypoints, height, width = heat.shape
        weights = heat.flatten(2).softmax(-1).view(batch, keypoints, height, width)
        ys = torch.linspace(-1, 1, height, device=x.device)
        xs = torch.linspace(-1, 1, width, device=x.device)
        expected_x = (weights.sum(2) * xs).sum(-1)
        expected_y = (weights.sum(3) * ys).sum(-1)
        return torch.cat([expected_x, expected_y], dim=1)


class ImageEncoder(nn.Module):
    """ResNet-ish conv trunk with GroupNorm and spatial softmax: image -> feature vector."""

    def __init__(self, channels: tuple[int, ...], keypoints: int, feature_dim: int,
                 groups: int, strides: tuple[int, ...] = (), pool: bool = False) -> None:
        """Stack stages that each stride (default 2) and widen to their channel count.

        `pool` adds the globally averaged channels of the last stage to the keypoint coordinates.
        """
        super().__init__()
        layers: list[nn.Module] = []
        previous = 3
        for index, width in enumerate(channels):
            stride = strides[index] if index < len(strides) else 2
            layers += [nn.Conv2d(previous, width, 3, stride=stride, padding=1),
                       nn.GroupNorm(groups, width), nn.Mish(), ResidualBlock2d(width, groups)]
            previous = width
        self.trunk = nn.Sequential(*layers)
        self.keypoints = SpatialSoftmax(previous, keypoints)
        self.pool = pool
        self.out = nn.Linear(2 * keypoints + (previous if pool else 0), feature_dim)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Image (B, 3, H, W) in [-1, 1] -> (B, feature_dim)."""
        maps = self.trunk(image)
        features = self.keypoints(maps)
        if self.pool:
            features = torch.cat([features, maps.mean(dim=(2, 3))], dim=1)
        return self.out(features)


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding (B, dim) of integer diffusion steps t (B,)."""
    half = dim // 2
    frequencies = torch.exp(-math.log(10000) * torch.arange(half, device=t.device) / (half - 1))
    angles = t.float()[:, None] * frequencies[None]
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class Conv1dBlock(nn.Sequential):
    """Conv1d -> GroupNorm -> Mish."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 groups: int) -> None:
        """Create a same-length temporal convolution block."""
        super().__init__(nn.Conv1d(in_channels, out_channels, kernel_size,
                                   padding=kernel_size // 2),
                         nn.GroupNorm(groups, out_channels), nn.Mish())


class FiLMResidualBlock1d(nn.Module):
    """Two temporal conv blocks; the condition scales and shifts the first one's output."""

    def __init__(self, in_channels: int, out_channels: int, cond_dim: int, kernel_size: int,
                 groups: int) -> None:
        """Create the block (a 1x1 skip convolution when the width changes)."""
        super().__init__()
        self.first = Conv1dBlock(in_channels, out_channels, kernel_size, groups)
        self.second = Conv1dBlock(out_channels, out_channels, kernel_size, groups)
        self.film = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, 2 * out_channels))
        self.skip = (nn.Conv1d(in_channels, out_channels, 1) if in_channels != out_channels
                     else nn.Identity())

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Map x (B, C_in, T) and cond (B, cond_dim) to (B, C_out, T)."""
        scale, bias = self.film(cond)[:, :, None].chunk(2, dim=1)
        return self.second(self.first(x) * scale + bias) + self.skip(x)


class ConditionalUnet1d(nn.Module):
    """Chi et al.'s ConditionalUnet1D (FiLM on the step embedding plus a global condition)."""

    def __init__(self, action_dim: int, cond_dim: int, down_dims: tuple[int, ...],
                 kernel_size: int, groups: int, step_embed_dim: int) -> None:
        """Levels of `down_dims` widths; the horizon halves between levels."""
        super().__init__()
        self.step_embed_dim = step_embed_dim
        self.step_mlp = nn.Sequential(nn.Linear(step_embed_dim, 4 * step_embed_dim), nn.Mish(),
                                      nn.Linear(4 * step_embed_dim, step_embed_dim))
        cond_dim = cond_dim + step_embed_dim
        widths = [action_dim, *down_dims]

        def block(a: int, b: int) -> FiLMResidualBlock1d:
            return FiLMResidualBlock1d(a, b, cond_dim, kernel_size, groups)

        self.downs = nn.ModuleList()
        for level, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            last = level == len(down_dims) - 1
            self.downs.append(nn.ModuleList([
                block(a, b), block(b, b),
                nn.Identity() if last else nn.Conv1d(b, b, 3, stride=2, padding=1)]))
        self.mids = nn.ModuleList([block(down_dims[-1], down_dims[-1]) for _ in range(2)])
        self.ups = nn.ModuleList()
        for a, b in zip(reversed(down_dims[1:]), reversed(down_dims[:-1])):
            self.ups.append(nn.ModuleList([
                block(2 * a, b), block(b, b), nn.ConvTranspose1d(b, b, 4, stride=2, padding=1)]))
        self.final = nn.Sequential(Conv1dBlock(down_dims[0], down_dims[0], kernel_size, groups),
                                   nn.Conv1d(down_dims[0], action_dim, 1))

    def forward(self, sample: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Noisy actions (B, T, A), steps t (B,), condition (B, D) -> prediction (B, T, A)."""
        x = sample.transpose(1, 2)
        cond = torch.cat([self.step_mlp(timestep_embedding(t, self.step_embed_dim)), cond], -1)
        skips = []
        for first, second, down in self.downs:
            x = second(first(x, cond), cond)
            skips.append(x)
            x = down(x)
        for mid in self.mids:
            x = mid(x, cond)
        for first, second, up in self.ups:
            x = second(first(torch.cat([x, skips.pop()], dim=1), cond), cond)
            x = up(x)
        return self.final(x).transpose(1, 2)


class DiffusionPolicy(nn.Module):
    """Goal-conditioned diffusion policy with its noise schedulers."""

    def __init__(self, config: DiffusionPolicyConfig | None = None) -> None:
        """Build the encoders and the U-Net (the schedulers are built on first use)."""
        super().__init__()
        self.config = config = config or DiffusionPolicyConfig()
        encoder_args = (config.encoder_channels, config.keypoints, config.feature_dim,
                        config.groups, config.encoder_strides, config.encoder_pool)
        self.obs_encoder = ImageEncoder(*encoder_args) if config.use_obs_image else None
        self.goal_encoder = ImageEncoder(*encoder_args)
        self.goal_state = (nn.Sequential(nn.Linear(config.feature_dim, config.feature_dim),
                                         nn.Mish(), nn.Linear(config.feature_dim, 4))
                           if config.aux_goal_state else None)
        cond_dim = ((2 if config.use_obs_image else 1) * config.feature_dim
                    + (3 if config.use_hand_pos else 0) + (1 if config.use_gripper else 0)
                    + (4 if config.aux_goal_state else 0))
        self.unet = ConditionalUnet1d(config.action_dim, cond_dim, config.down_dims,
                                      config.kernel_size, config.groups, config.step_embed_dim)

    @property
    def _schedule(self) -> dict[str, Any]:
        """The noise schedule both diffusers schedulers share."""
        return dict(num_train_timesteps=self.config.train_timesteps,
                    beta_schedule=self.config.beta_schedule, prediction_type="epsilon",
                    clip_sample=True)

    @cached_property
    def train_scheduler(self) -> DDPMScheduler:
        """The DDPM scheduler (diffusers) that noises training chunks (built on first use).

        diffusers is imported here, not with the module: the goal servo uses this network's
        goal-state head only and never samples, so its predictor starts without diffusers.
        """
        from diffusers import DDPMScheduler
        return DDPMScheduler(**self._schedule)

    @cached_property
    def inference_scheduler(self) -> DDIMScheduler:
        """The DDIM scheduler (diffusers) that samples action chunks (built on first use)."""
        from diffusers import DDIMScheduler
        return DDIMScheduler(**self._schedule)

    def encode(self, goal: torch.Tensor, image: torch.Tensor | None = None,
               hand_pos: torch.Tensor | None = None, gripper: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Return the conditioning vectors (B, D) and the goal-state estimate (B, 4) or None.

        goal, image: (B, 3, H, W) in [0, 1]; hand_pos (B, 3) m; gripper (B, 1) last effort;
        inputs the config skips may be None. The goal-state head (``aux_goal_state``) reads the
        goal frame alone: the hand position there (decimetres) and the gripper effort; it is
        part of the condition and is trained against the true goal state.
        """
        config = self.config
        goal_features = self.goal_encoder(goal * 2 - 1)
        features = [goal_features]
        if config.use_obs_image:
            features.insert(0, self.obs_encoder(image * 2 - 1))
        if config.use_hand_pos:
            features.append(hand_pos)
        if config.use_gripper:
            features.append(gripper)
        state = None
        if self.goal_state is not None:
            state = self.goal_state(goal_features)
            features.append(state)
        return torch.cat(features, dim=-1), state

    def condition(self, goal: torch.Tensor, image: torch.Tensor | None = None,
                  hand_pos: torch.Tensor | None = None,
                  gripper: torch.Tensor | None = None) -> torch.Tensor:
        """Return the conditioning vectors, shape (B, D) (see `encode`)."""
        return self.encode(goal, image, hand_pos, gripper)[0]

    def loss(self, actions: torch.Tensor, goal: torch.Tensor, *,
             image: torch.Tensor | None = None, hand_pos: torch.Tensor | None = None,
             gripper: torch.Tensor | None = None, goal_hand_pos: torch.Tensor | None = None,
             goal_gripper: torch.Tensor | None = None,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """Epsilon-prediction MSE for expert chunks actions (B, T, A) in [-1, 1].

        With ``aux_goal_state``, plus the MSE of the goal-state estimate against goal_hand_pos
        (B, 3) m (in decimetres) and goal_gripper (B, 1).
        """
        noise = torch.randn(actions.shape, generator=generator, device=actions.device)
        t = torch.randint(0, self.config.train_timesteps, (len(actions),), generator=generator,
                          device=actions.device)
        noisy = self.train_scheduler.add_noise(actions, noise, t)
        cond, state = self.encode(goal, image, hand_pos, gripper)
        loss = F.mse_loss(self.unet(noisy, t, cond), noise)
        if state is not None and goal_hand_pos is not None and goal_gripper is not None:
            loss = loss + F.mse_loss(state, torch.cat([10 * goal_hand_pos, goal_gripper], -1))
        return loss

    @torch.no_grad()
    def sample(self, goal: torch.Tensor, *, image: torch.Tensor | None = None,
               hand_pos: torch.Tensor | None = None, gripper: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Sample action chunks (B, horizon, action_dim) in [-1, 1] with DDIM."""
        cond = self.condition(goal, image, hand_pos, gripper)
        scheduler = self.inference_scheduler
        scheduler.set_timesteps(self.config.inference_steps)
        shape = (len(goal), self.config.horizon, self.config.action_dim)
        x = torch.randn(shape, generator=generator, device=goal.device)
        for t in scheduler.timesteps:
            steps = torch.full((len(goal),), int(t), device=goal.device, dtype=torch.long)
            x = scheduler.step(self.unet(x, steps, cond), t, x).prev_sample
        return x.clamp(-1, 1)


@dataclass
class PolicyCheckpoint:
    """What a policy weights file holds: plain-dict config, state dict and training notes."""

    config: DiffusionPolicyConfig
    state_dict: dict
    meta: dict = field(default_factory=dict)

    def save(self, path: str | os.PathLike) -> None:
        """Write a file that `torch.load(weights_only=True)` reads (atomically: tmp + rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        torch.save({"config": self.config.to_dict(), "state_dict": self.state_dict,
                    "meta": self.meta}, partial)
        os.replace(partial, path)


def load_policy(path: str, device: str = "cpu") -> DiffusionPolicy:
    """Load a DiffusionPolicy saved by `PolicyCheckpoint.save` (weights_only), in eval mode."""
    data = torch.load(path, map_location=device, weights_only=True)
    policy = DiffusionPolicy(DiffusionPolicyConfig.from_dict(data["config"]))
    policy.load_state_dict(data["state_dict"])
    return policy.to(device).eval()
