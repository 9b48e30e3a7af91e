"""The optimisation loop both trainers share: resumable, deterministic per step, logged.

Step s draws its noise from ``step_generator(seed, s)`` and its learning rate from
``learning_rate(s, ...)``, so a run resumed from a checkpoint continues exactly as if it had not
stopped. Every step appends ``step,loss,lr,seconds`` to ``OUT/loss.csv``.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
import time
from typing import Callable, Iterable, TYPE_CHECKING

import torch
from tqdm import tqdm

if TYPE_CHECKING:
    from diffusers.training_utils import EMAModel

LOSS_CSV = "loss.csv"


def step_generator(seed: int, step: int) -> torch.Generator:
    """Noise generator of one step, a function of (seed, step) only (resume = uninterrupted)."""
    return torch.Generator().manual_seed(seed * 1_000_003 + step)


def make_ema(parameters: Iterable[torch.nn.Parameter], decay: float) -> EMAModel:
    """Diffusers' ``EMAModel`` with warm-up (power 0.75): the EMA weights both trainers keep.

    ``diffusers.training_utils`` is imported here, when a run starts, not with the module: it
    loads diffusers' model zoo (1.3 CPU-s), which a trainer's ``--help`` or import does not need.
    """
    from diffusers.training_utils import EMAModel
    return EMAModel(parameters, decay=decay, use_ema_warmup=True, power=0.75)


def learning_rate(step: int, base: float, warmup: int, total: int) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to 10% of ``base`` at ``total``."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (0.1 + 0.45 * (1.0 + math.cos(math.pi * progress)))


def run_steps(batches: Iterable[dict],
              loss_of: Callable[[dict, torch.Generator], torch.Tensor],
              model: torch.nn.Module, optimizer: torch.optim.Optimizer, ema: EMAModel,
              save: Callable[[int, float], None], *, out: Path, step: int, elapsed: float,
              total_steps: int, base_lr: float, warmup: int, seed: int, max_minutes: float,
              save_every: int, desc: str, clip_norm: float | None = None) -> tuple[int, float]:
    """Optimise ``loss_of(batch, generator)`` over ``batches``; return (step, train seconds).

    ``save(step, elapsed)`` runs every ``save_every`` steps and at the end (unless the last
    step was just saved). The loop stops when ``batches`` ends or after ``max_minutes`` of wall
    time in this run.
    """
    deadline = time.monotonic() + 60.0 * max_minutes
    saved: int | None = None        # the step of this run's last save
    new_log = not (out / LOSS_CSV).exists()
    with open(out / LOSS_CSV, "a", newline="") as log:
        writer = csv.writer(log)
        if new_log:
            writer.writerow(["step", "loss", "lr", "seconds"])
        progress = tqdm(total=total_steps, initial=step, desc=desc, unit="step", mininterval=10)
        for batch in batches:
            if time.monotonic() >= deadline:
                break
            started = time.monotonic()
            lr = learning_rate(step, base_lr, warmup, total_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss = loss_of(batch, step_generator(seed, step))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip_norm is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
            optimizer.step()
            ema.step(model.parameters())
            step += 1
            elapsed += time.monotonic() - started
            writer.writerow([step, f"{loss.item():.5f}", f"{lr:.3e}", f"{elapsed:.1f}"])
            log.flush()
            progress.update(1)
            progress.set_postfix(loss=f"{loss.item():.4f}")
            if step % save_every == 0:
                save(step, elapsed)
                saved = step
        progress.close()
    if saved != step:
        save(step, elapsed)
    return step, elapsed
