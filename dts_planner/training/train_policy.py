"""Train the goal-conditioned diffusion policy on Meta-World expert shards (hindsight goals).

``python -m dts_planner.training.train_policy --data data/metaworld11 --out runs/policy``

Samples are GCP's hindsight relabelling (`dts_planner.data.ActionChunkDataset`): frame t,
the hand position and last gripper effort at t, a goal frame k steps later (k drawn from
``--goal-offset LO HI``; clamped to the episode end) and the 16 expert actions from t. Goal
(and observation) images get independent random shifts of up to ``--shift`` px and Gaussian
pixel noise of a random strength up to ``--goal-noise`` (generated plans are noisier than
renders). Every task is drawn equally often. Batches come through a DataLoader whose batch
sampler and noise depend on (seed, step) only, so a run resumes exactly.

``OUT/checkpoint.pt`` holds the training state (weights, EMA, optimizer, step) and is written
every ``--save-every`` steps and at the end, atomically; rerunning the command resumes from it
(``--chunk-steps`` / ``--max-minutes`` bound one run). ``OUT/policy.pt`` holds the EMA weights
(what `load_policy` and the predictor read); ``OUT/loss.csv`` logs every step. Nothing is
written outside OUT unless ``--export PATH`` asks for a copy of the EMA weights (the shipped
weights are only ever replaced that way).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
import json
import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from dts_planner.data import (
    ActionChunkDataset, balanced_weights, chunks_to_tensors, load_episodes, StepBatchSampler)
from dts_planner.data.shards import EpisodeTable
from dts_planner.models import image_to_cond
from dts_planner.predictors.diffusion_policy import (
    DiffusionPolicy, DiffusionPolicyConfig, PolicyCheckpoint, load_policy)
from dts_planner.training.loop import make_ema, run_steps

CHECKPOINT = "checkpoint.pt"
POLICY = "policy.pt"


def random_shift(images: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Shift each image (B, 3, H, W) by up to `pad` px (replicate padding), as DrQ does."""
    if pad <= 0:
        return images
    batch, _, height, width = images.shape
    padded = F.pad(images, (pad, pad, pad, pad), mode="replicate")
    offsets = torch.randint(0, 2 * pad + 1, (batch, 2), generator=generator)
    return torch.stack([padded[b, :, y:y + height, x:x + width]
                        for b, (y, x) in enumerate(offsets.tolist())])


def pixel_noise(images: torch.Tensor, max_std: float, generator: torch.Generator) -> torch.Tensor:
    """Add Gaussian noise of a per-image std drawn uniformly from [0, max_std], clamp to [0, 1]."""
    if max_std <= 0:
        return images
    std = torch.rand(len(images), 1, 1, 1, generator=generator) * max_std
    return (images + std * torch.randn(images.shape, generator=generator)).clamp(0, 1)


def split_episodes(table: EpisodeTable, holdout: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Train / held-out episode indices: `holdout` random episodes per task held out."""
    held = [rng.permutation(np.flatnonzero(table.task == task))[:holdout]
            for task in np.unique(table.task)]
    held_out = np.sort(np.concatenate(held)).astype(np.int64)
    return np.setdiff1d(np.arange(len(table)), held_out), held_out


def policy_inputs(policy: DiffusionPolicy, batch: dict, generator: torch.Generator | None = None,
                  shift: int = 0, goal_noise: float = 0.0) -> dict[str, torch.Tensor | None]:
    """Keyword inputs of `DiffusionPolicy.loss/sample` for a collated batch (augmented)."""
    config = policy.config

    def augment(images: torch.Tensor, noise: float) -> torch.Tensor:
        images = image_to_cond(images)
        if generator is None:
            return images
        return pixel_noise(random_shift(images, shift, generator), noise, generator)

    return {"goal": augment(batch["goal_rgb"], goal_noise),
            "image": augment(batch["rgb"], 0.0) if config.use_obs_image else None,
            "hand_pos": torch.as_tensor(batch["hand_pos"]) if config.use_hand_pos else None,
            "gripper": torch.as_tensor(batch["gripper"]) if config.use_gripper else None}


@torch.no_grad()
def action_error(policy: DiffusionPolicy, data: ActionChunkDataset, samples: int,
                 seed: int) -> float:
    """Mean absolute error of the executed actions (first num_execute) on random samples."""
    rng = np.random.default_rng(seed)
    keys = list(zip(rng.integers(0, len(data), samples).tolist(), rng.random(samples).tolist()))
    batch = chunks_to_tensors(data.__getitems__(keys))
    predicted = policy.sample(**policy_inputs(policy, batch),
                              generator=torch.Generator().manual_seed(seed))
    execute = policy.config.num_execute
    return float((predicted[:, :execute] - batch["actions"][:, :execute]).abs().mean())


def _atomic_save(data: dict, path: Path) -> None:
    """torch.save to a temporary name, then rename (a crash never leaves a torn file)."""
    partial = path.with_name(path.name + ".partial")
    torch.save(data, partial)
    os.replace(partial, path)


def train(args: argparse.Namespace) -> dict:
    """Train (or resume) the policy; return the training summary (also in OUT/policy.pt).

    ``args.threads`` is the command's (`main`): the process's torch thread count is left alone.
    """
    torch.manual_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    checkpoint_path = out / CHECKPOINT
    resume = (torch.load(checkpoint_path, weights_only=True)
              if checkpoint_path.exists() else None)
    if resume is not None:
        config = DiffusionPolicyConfig.from_dict(resume["config"])
    else:
        config = DiffusionPolicyConfig(**json.loads(args.config))
        if args.image_size:
            config = replace(config, image_size=args.image_size)
    table = load_episodes(args.data, fields=("rgb", "hand_pos", "action"), tasks=args.tasks)
    # the split ignores --seed, so every run on the same data keeps the same held-out episodes
    train_episodes, held_out = split_episodes(table, args.holdout, np.random.default_rng(0))
    offsets = tuple(args.goal_offset) if len(args.goal_offset) == 2 else args.goal_offset[0]
    data = ActionChunkDataset(table, config.horizon, offsets, episodes=train_episodes,
                              image_size=config.image_size)
    held = ActionChunkDataset(table, config.horizon, offsets, episodes=held_out,
                              image_size=config.image_size)
    policy = DiffusionPolicy(config)
    ema_policy = DiffusionPolicy(config).eval().requires_grad_(False)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=args.lr, weight_decay=1e-6)
    ema = make_ema(policy.parameters(), 0.9999)
    step, elapsed = 0, 0.0
    summary = {"episodes_train": len(train_episodes), "episodes_held_out": len(held_out),
               "samples_train": len(data), "tasks": sorted(set(table.task.tolist())),
               "cameras": sorted(set(table.camera.tolist())), "batch_size": args.batch_size,
               "lr": args.lr, "goal_offset": list(data.goal_range), "seed": args.seed,
               "shift": args.shift, "goal_noise": args.goal_noise, "data": str(args.data),
               "init": args.init, "parameters": sum(p.numel() for p in policy.parameters())}
    if resume is not None:
        policy.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["opt"])
        ema.load_state_dict(resume["ema"])
        step, elapsed = int(resume["step"]), float(resume["meta"].get("train_seconds", 0.0))
        summary["init"] = resume["meta"].get("init")
    elif args.init:
        policy.load_state_dict(load_policy(args.init).state_dict())
        ema = make_ema(policy.parameters(), 0.9999)

    def save(step: int, elapsed: float) -> None:
        ema.copy_to(ema_policy.parameters())
        summary.update(steps=step, train_seconds=round(elapsed, 1))
        _atomic_save({"config": config.to_dict(), "model": policy.state_dict(),
                      "opt": optimizer.state_dict(), "ema": ema.state_dict(), "step": step,
                      "meta": dict(summary)}, checkpoint_path)
        PolicyCheckpoint(config, ema_policy.state_dict(), dict(summary)).save(out / POLICY)

    last_step = min(args.steps, step + args.chunk_steps) if args.chunk_steps else args.steps
    batches = StepBatchSampler(balanced_weights(data.table.task[data.episode_of_step]),
                               args.batch_size, args.seed, step, last_step)
    loader = DataLoader(data, batch_sampler=batches, num_workers=args.workers,
                        collate_fn=chunks_to_tensors)

    def loss_of(batch: dict, generator: torch.Generator) -> torch.Tensor:
        inputs = policy_inputs(policy, batch, generator, args.shift, args.goal_noise)
        return policy.loss(batch["actions"], **inputs, goal_hand_pos=batch["goal_hand_pos"],
                           goal_gripper=batch["goal_gripper"], generator=generator)

    run_steps(loader, loss_of, policy, optimizer, ema, save, out=out, step=step, elapsed=elapsed,
              total_steps=args.steps, base_lr=args.lr, warmup=args.warmup, seed=args.seed,
              max_minutes=args.max_minutes, save_every=args.save_every, desc="policy")
    if args.eval_samples and len(held):
        summary["held_out_action_mae"] = action_error(ema_policy, held, args.eval_samples, 0)
        summary["train_action_mae"] = action_error(ema_policy, data, args.eval_samples, 0)
        PolicyCheckpoint(config, ema_policy.state_dict(), dict(summary)).save(out / POLICY)
    if args.export:
        PolicyCheckpoint(config, ema_policy.state_dict(), dict(summary)).save(args.export)
    return summary


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="data/metaworld11", help="shard directory")
    parser.add_argument("--out", default="runs/policy",
                        help="run directory (resumed if it holds a checkpoint)")
    parser.add_argument("--export", default=None,
                        help="also write the EMA weights to this file (e.g. the shipped "
                             "dts_planner/weights/policy_default.pt)")
    parser.add_argument("--tasks", nargs="*", default=None, help="default: all in the shards")
    parser.add_argument("--config", default="{}", help="JSON overrides of DiffusionPolicyConfig")
    parser.add_argument("--image-size", type=int, default=0,
                        help="square image size of the policy (0: the config's)")
    parser.add_argument("--init", default=None, help="start from these policy weights")
    parser.add_argument("--steps", type=int, default=20_000, help="total optimizer steps")
    parser.add_argument("--chunk-steps", type=int, default=0,
                        help="stop (and save) after this many steps in this run; 0 = no limit")
    parser.add_argument("--max-minutes", type=float, default=math.inf,
                        help="stop (and save) after this much wall time in this run")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--goal-offset", type=int, nargs="+", default=[16],
                        help="steps from the observation to the goal frame: K or LO HI")
    parser.add_argument("--shift", type=int, default=4, help="random image shift (px)")
    parser.add_argument("--goal-noise", type=float, default=0.0,
                        help="largest std of the Gaussian noise added to goal images")
    parser.add_argument("--holdout", type=int, default=2, help="held-out episodes per task")
    parser.add_argument("--save-every", type=int, default=500)
    parser.add_argument("--eval-samples", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads of this command")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``python -m dts_planner.training.train_policy``."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    summary = train(args)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
