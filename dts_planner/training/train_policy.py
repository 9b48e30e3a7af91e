"""Train the goal-conditioned diffusion policy on Meta-World expert shards (hindsight goals).

``python -m dts_planner.training.train_policy --data data/metaworld64 --minutes 25``

Each sample is (frame i, hand position i, goal = frame i + 16 of the same episode (clamped to
its last frame), expert actions i .. i + 15 (past the end: zero motion, last gripper effort)),
as in GCP's hindsight relabelling. The observation and goal images get independent random
shifts of up to 4 px. EMA weights (diffusers EMAModel, warm-up power 0.75) are written to
``--out`` every ``--save-every`` steps and at the end, with the held-out action error.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
import json
from pathlib import Path
import time
from typing import Sequence

from diffusers.training_utils import EMAModel
import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from dts_planner.data.shards import EpisodeTable, load_episodes
from dts_planner.predictors.diffusion_policy import (
    DiffusionPolicy, DiffusionPolicyConfig, PolicyCheckpoint, load_policy)


@dataclass
class HindsightChunks:
    """(image, hand, goal image, action chunk) samples from expert episodes.

    images (N, H, W, 3) uint8, hand (N, 3), actions (N, A) clipped to [-1, 1]; `index` lists
    the usable frames (all but each episode's last) and `last` the episode end of each frame.
    """

    images: np.ndarray
    hand: np.ndarray
    actions: np.ndarray
    index: np.ndarray
    last: np.ndarray
    horizon: int
    goal_offset: int

    @classmethod
    def from_table(cls, table: EpisodeTable, episodes: np.ndarray, horizon: int = 16,
                   goal_offset: int = 16) -> HindsightChunks:
        """Build the samples of the chosen episodes (indices into the table)."""
        last = np.zeros(len(table.frames["rgb"]), dtype=np.int64)
        index = []
        for episode in episodes:
            start, length = table.starts[episode], table.lengths[episode]
            last[start:start + length] = start + length - 1
            index.append(np.arange(start, start + length - 1))
        return cls(table.frames["rgb"], table.frames["hand_pos"].astype(np.float32),
                   np.clip(table.frames["action"], -1.0, 1.0), np.concatenate(index), last,
                   horizon, goal_offset)

    def __len__(self) -> int:
        """Return the number of usable frames."""
        return len(self.index)

    def batch(self, rows: np.ndarray) -> tuple[np.ndarray, ...]:
        """Images (B, H, W, 3), hand (B, 3), goals (B, H, W, 3), chunks (B, horizon, A)."""
        frames = self.index[rows]
        last = self.last[frames]
        goals = np.minimum(frames + self.goal_offset, last)
        steps = frames[:, None] + np.arange(self.horizon)[None]
        chunks = self.actions[np.minimum(steps, last[:, None] - 1)].copy()
        beyond = steps >= last[:, None]
        chunks[..., :3][beyond] = 0.0
        return self.images[frames], self.hand[frames], self.images[goals], chunks


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 images (B, H, W, 3) -> float (B, 3, H, W) in [0, 1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0


def random_shift(images: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Shift each image (B, 3, H, W) by up to `pad` px (replicate padding), as DrQ does."""
    batch, _, height, width = images.shape
    padded = F.pad(images, (pad, pad, pad, pad), mode="replicate")
    offsets = torch.randint(0, 2 * pad + 1, (batch, 2), generator=generator)
    return torch.stack([padded[b, :, y:y + height, x:x + width]
                        for b, (y, x) in enumerate(offsets.tolist())])


def split_episodes(table: EpisodeTable, holdout: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Train / held-out episode indices: `holdout` random episodes per task held out."""
    held = [rng.permutation(np.flatnonzero(table.task == task))[:holdout]
            for task in np.unique(table.task)]
    held_out = np.sort(np.concatenate(held))
    return np.setdiff1d(np.arange(len(table)), held_out), held_out


@torch.no_grad()
def action_error(policy: DiffusionPolicy, data: HindsightChunks, samples: int,
                 seed: int) -> float:
    """Mean absolute error of the executed actions (first num_execute) on random samples."""
    rng = np.random.default_rng(seed)
    images, hand, goals, chunks = data.batch(rng.integers(0, len(data), samples))
    generator = torch.Generator().manual_seed(seed)
    predicted = policy.sample(to_tensor(images), to_tensor(goals), torch.from_numpy(hand),
                              generator)
    execute = policy.config.num_execute
    return float((predicted[:, :execute] - torch.from_numpy(chunks)[:, :execute]).abs().mean())


def train(args: argparse.Namespace) -> dict:
    """Train, write the EMA weights to args.out and return the training summary."""
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    table = load_episodes(args.data, fields=("rgb", "hand_pos", "action"), tasks=args.tasks)
    # the split ignores --seed, so a run resumed with --init keeps the same held-out episodes
    train_episodes, held_out = split_episodes(table, args.holdout, np.random.default_rng(0))
    config = DiffusionPolicyConfig(image_size=table.frames["rgb"].shape[1],
                                   **json.loads(args.config))
    data = HindsightChunks.from_table(table, train_episodes, config.horizon, args.goal_offset)
    held = HindsightChunks.from_table(table, held_out, config.horizon, args.goal_offset)
    policy = DiffusionPolicy(config)
    if args.init:
        policy.load_state_dict(load_policy(args.init).state_dict())
    optimizer = torch.optim.AdamW(policy.parameters(), lr=args.lr, weight_decay=1e-6)
    ema = EMAModel(policy.parameters(), decay=0.9999, use_ema_warmup=True, power=0.75)
    ema_policy = DiffusionPolicy(config).eval()
    summary = {"episodes_train": len(train_episodes), "episodes_held_out": len(held_out),
               "samples_train": len(data), "tasks": sorted(set(table.task.tolist())),
               "cameras": sorted(set(table.camera.tolist())), "batch_size": args.batch_size,
               "lr": args.lr, "goal_offset": args.goal_offset, "seed": args.seed,
               "init": args.init,
               "parameters": sum(p.numel() for p in policy.parameters())}
    deadline = time.monotonic() + 60 * args.minutes
    losses: list[float] = []

    def save(step: int) -> None:
        ema.copy_to(ema_policy.parameters())
        summary.update(steps=step, final_loss=float(np.mean(losses[-100:])),
                       minutes=round(args.minutes - (deadline - time.monotonic()) / 60, 1))
        PolicyCheckpoint(config, ema_policy.state_dict(), dict(summary)).save(args.out)

    progress = tqdm(range(1, args.steps + 1), desc="policy", mininterval=30)
    for step in progress:
        images, hand, goals, chunks = data.batch(rng.integers(0, len(data), args.batch_size))
        loss = policy.loss(random_shift(to_tensor(images), 4, generator),
                           random_shift(to_tensor(goals), 4, generator),
                           torch.from_numpy(hand), torch.from_numpy(chunks), generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        ema.step(policy.parameters())
        losses.append(loss.item())
        progress.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
        if step % args.save_every == 0 or time.monotonic() > deadline:
            save(step)
        if time.monotonic() > deadline:
            break
    save(len(losses))
    summary["held_out_action_mae"] = action_error(ema_policy, held, args.eval_samples, args.seed)
    summary["train_action_mae"] = action_error(ema_policy, data, args.eval_samples, args.seed)
    summary["loss_curve"] = [round(float(np.mean(losses[i:i + 100])), 4)
                             for i in range(0, len(losses), 100)]
    PolicyCheckpoint(config, ema_policy.state_dict(), dict(summary)).save(args.out)
    return summary


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="data/metaworld64", help="shard directory")
    parser.add_argument("--out", default="dts_planner/weights/policy_default.pt")
    parser.add_argument("--tasks", nargs="*", default=None, help="default: all in the shards")
    parser.add_argument("--config", default="{}", help="JSON overrides of DiffusionPolicyConfig")
    parser.add_argument("--init", default=None, help="start from these policy weights")
    parser.add_argument("--steps", type=int, default=200_000)
    parser.add_argument("--minutes", type=float, default=25.0, help="wall-clock budget")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--goal-offset", type=int, default=16)
    parser.add_argument("--holdout", type=int, default=2, help="held-out episodes per task")
    parser.add_argument("--save-every", type=int, default=200)
    parser.add_argument("--eval-samples", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``python -m dts_planner.training.train_policy``."""
    args = parse_args(argv)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    summary = train(args)
    print(json.dumps({k: v for k, v in summary.items() if k != "loss_curve"}, indent=1))


if __name__ == "__main__":
    main()
