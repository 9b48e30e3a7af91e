"""Train the video diffusion model on Meta-World demonstration shards (AVDC recipe, CPU-sized).

``python -m dts_planner.training.train_video --data data/metaworld11 --out runs/video``

AVDC's objective (v-prediction, T = 100 cosine, min-SNR-5 weighting), text dropout (the whole
embedding zeroed with p = 0.1, for classifier-free guidance), AdamW with linear warm-up and
cosine decay, EMA weights (diffusers ``EMAModel`` with warm-up). Text embeddings are computed
once per instruction. Clips come through a ``torch.utils.data.DataLoader`` (``--workers``)
whose batch sampler draws step s's batch from (seed, s) alone (every task equally often).
``OUT/checkpoint.pt`` is written in AVDC's layout with ``dts_planner.models.save_checkpoint``
(online + EMA weights, optimizer, step) every ``--save-every`` steps and at the end; rerunning
the command resumes from it, exactly as if it had not stopped (``--chunk-steps`` and
``--max-minutes`` bound one run; the schedule follows ``--steps``). ``--init-from``
starts a new run from another run's weights (e.g. at a new image size: the U-Net has no
resolution-bound parameters; clips are resized to the model's size as camera images are).
``OUT/loss.csv`` logs every step; ``OUT/loss_curve.png`` plots it when the run (or its chunk)
ends. ``--export`` writes the EMA weights alone in float16 (the shippable default model).
"""

from __future__ import annotations

import argparse
import csv
from dataclasses import replace
import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from torch.utils.data import DataLoader

from dts_planner.data import VideoClipDataset
from dts_planner.data.datasets import balanced_weights, StepBatchSampler
from dts_planner.models import (
    frames_to_model_space, get_preset, image_to_cond, load_video_model, read_checkpoint,
    save_checkpoint, unet_state_dict, VideoDiffusionModel, VideoModelConfig)
from dts_planner.models.text_encoders import shared_text_encoder
from dts_planner.training.diffusion_loss import v_prediction_loss
from dts_planner.training.loop import LOSS_CSV, make_ema, run_steps

CHECKPOINT = "checkpoint.pt"
LOSS_PNG = "loss_curve.png"


def embed_instructions(instructions: Sequence[str], encoder_name: str) -> dict[str, torch.Tensor]:
    """Text embedding (L, D) of each distinct instruction, encoded once in one padded batch."""
    texts = sorted(set(instructions))
    return dict(zip(texts, shared_text_encoder(encoder_name, "cpu").encode(texts)))


def to_model_inputs(batch: dict, embeddings: dict[str, torch.Tensor], text_dropout: float,
                    generator: torch.Generator) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Model-space future video (B, F*3, H, W) and conditioning for a collated clip batch.

    batch: ``frames`` (B, F + 1, H, W, 3) uint8 and ``instruction`` (B strings); the whole text
    embedding of each sample is zeroed with probability ``text_dropout``.
    """
    frames = batch["frames"]
    task_embed = torch.stack([embeddings[text] for text in batch["instruction"]])
    keep = torch.rand(len(frames), generator=generator) >= text_dropout
    task_embed = task_embed * keep[:, None, None]
    return frames_to_model_space(frames[:, 1:]), {"image": image_to_cond(frames[:, 0]),
                                                  "task_embed": task_embed}


def plot_loss(csv_path: Path, png_path: Path) -> None:
    """Plot the per-step loss and its 50-step running mean from the loss CSV."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(csv_path) as handle:
        rows = list(csv.DictReader(handle))
    steps = np.array([int(row["step"]) for row in rows])
    losses = np.array([float(row["loss"]) for row in rows])
    window = min(50, len(losses))
    smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
    figure, axes = plt.subplots(figsize=(6, 3.5))
    axes.plot(steps, losses, alpha=0.3, lw=0.8, label="loss")
    axes.plot(steps[window - 1:], smooth, lw=1.5, label=f"{window}-step mean")
    axes.set(xlabel="step", ylabel="min-SNR-weighted v MSE", yscale="log",
             title="video model training loss")
    axes.legend()
    figure.tight_layout()
    figure.savefig(png_path, dpi=100)
    plt.close(figure)


def export_ema(checkpoint_path: str | os.PathLike, out: str | os.PathLike) -> None:
    """Write the EMA weights of a training checkpoint alone, in float16, to ``out``."""
    checkpoint = read_checkpoint(checkpoint_path)
    save_checkpoint(out, load_video_model(checkpoint_path), step=int(checkpoint["step"]),
                    extra=checkpoint.get("extra"), shippable=True)


def train(args: argparse.Namespace, config: VideoModelConfig | None = None) -> Path:
    """Train (or resume) and return the checkpoint path; ``config`` overrides ``--preset``.

    ``args.threads`` is the command's (`main`): the process's torch thread count is left alone.
    """
    torch.manual_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    config = config or get_preset(args.preset)
    if args.image_size:
        config = replace(config, image_size=(args.image_size, args.image_size))
    dataset = VideoClipDataset(args.data, num_frames=config.num_frames + 1, tasks=args.tasks,
                               seed=args.seed, image_size=config.image_size,
                               preprocess=config.preprocess)
    embeddings = embed_instructions(dataset.table.instruction.tolist(), config.text_encoder)
    model = VideoDiffusionModel(config).train()
    ema_model = VideoDiffusionModel(config).eval().requires_grad_(False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    step, elapsed = 0, 0.0
    checkpoint_path = out / CHECKPOINT
    if checkpoint_path.exists():
        checkpoint = read_checkpoint(checkpoint_path)
        model.load_state_dict(unet_state_dict(checkpoint, use_ema=False))
        ema_model.load_state_dict(unet_state_dict(checkpoint, use_ema=True))
        optimizer.load_state_dict(checkpoint["opt"])
        step = int(checkpoint["step"])
        elapsed = float(checkpoint["extra"].get("train_seconds", 0.0))
    else:
        if args.init_from:
            model.load_state_dict(load_video_model(args.init_from).state_dict())
        ema_model.load_state_dict(model.state_dict())
    ema = make_ema(ema_model.parameters(), args.ema_decay)
    ema.optimization_step = step
    last_step = min(args.steps, step + args.chunk_steps) if args.chunk_steps else args.steps
    batches = StepBatchSampler(balanced_weights(dataset.table.task),   # every task equally
                               args.batch_size, args.seed, step, last_step)
    loader = DataLoader(dataset, batch_sampler=batches, num_workers=args.workers,
                        persistent_workers=False)
    summary = {"episodes": len(dataset), "tasks": sorted(set(dataset.table.task.tolist())),
               "cameras": sorted(set(dataset.table.camera.tolist())),
               "batch_size": args.batch_size, "lr": args.lr, "text_dropout": args.text_dropout,
               "min_snr_gamma": args.min_snr_gamma, "data": str(args.data),
               "init_from": args.init_from}

    def save(step: int, elapsed: float) -> None:
        ema.copy_to(ema_model.parameters())
        summary.update(train_seconds=round(elapsed, 1), steps=step)
        save_checkpoint(checkpoint_path, model, ema_model=ema_model, step=step,
                        optimizer_state=optimizer.state_dict(), extra=summary)

    def loss_of(batch: dict, generator: torch.Generator) -> torch.Tensor:
        x0, cond = to_model_inputs(batch, embeddings, args.text_dropout, generator)
        return v_prediction_loss(model, x0, cond, generator, args.min_snr_gamma)

    run_steps(loader, loss_of, model, optimizer, ema, save, out=out, step=step, elapsed=elapsed,
              total_steps=args.steps, base_lr=args.lr, warmup=args.warmup, seed=args.seed,
              max_minutes=args.max_minutes, save_every=args.save_every, desc="video model",
              clip_norm=1.0)
    plot_loss(out / LOSS_CSV, out / LOSS_PNG)
    if args.export:
        export_ema(checkpoint_path, args.export)
    return checkpoint_path


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="shard directory (or file)")
    parser.add_argument("--out", required=True, help="run directory (resumed if it exists)")
    parser.add_argument("--steps", type=int, default=2000, help="total optimizer steps")
    parser.add_argument("--max-minutes", type=float, default=math.inf,
                        help="stop (and save) after this much wall time in this run")
    parser.add_argument("--chunk-steps", type=int, default=0,
                        help="stop (and save) after this many steps in this run; 0 = no limit")
    parser.add_argument("--preset", default="default", help="model config preset")
    parser.add_argument("--image-size", type=int, default=0,
                        help="square image size (px) of the model; 0 = the preset's own")
    parser.add_argument("--init-from", default=None,
                        help="start a new run from this checkpoint's (EMA) weights; its U-Net "
                             "must match the preset's, the image size may differ")
    parser.add_argument("--tasks", nargs="+", default=None, help="subset of tasks")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--weight-decay", type=float, default=1e-2)
    parser.add_argument("--ema-decay", type=float, default=0.999)
    parser.add_argument("--text-dropout", type=float, default=0.1)
    parser.add_argument("--min-snr-gamma", type=float, default=5.0)
    parser.add_argument("--save-every", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--workers", type=int, default=0,
                        help="DataLoader worker processes (0: load clips in this process)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--export", default=None,
                        help="also write the EMA weights alone (float16) to this path")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    path = train(args)
    print(f"checkpoint: {path}")


if __name__ == "__main__":
    main()
