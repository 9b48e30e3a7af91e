"""Helpers shared by the benchmarks: conditioning, round-robin timing, fidelity, machine line."""

from __future__ import annotations

from contextlib import contextmanager
import math
import os
from pathlib import Path
import platform
import subprocess
import time
from typing import Callable, Hashable, Iterator, Mapping, Sequence, TypeVar

import numpy as np
import torch
from torch import Tensor

from dts_planner.common.images import psnr
from dts_planner.models import image_to_cond, VideoDiffusionModel

Key = TypeVar("Key", bound=Hashable)
PACKAGE_DIR = Path(__file__).resolve().parents[1]


@contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Run the body with ``count`` torch threads (None: unchanged), then restore the count.

    On a loaded 2-core machine one thread is often many times faster than two (no spinning).
    """
    previous = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def random_condition(model: VideoDiffusionModel, batch: int, seed: int) -> dict[str, Tensor]:
    """Return a random conditioning frame (B, 3, H, W) in [0, 1] and text tokens (B, 8, D)."""
    generator = torch.Generator().manual_seed(seed + 1)
    image = torch.rand((batch, 3, *model.config.image_size), generator=generator)
    text = torch.randn((batch, 8, model.config.text_dim), generator=generator)
    return model.make_cond(image, text)


def metaworld_condition(model: VideoDiffusionModel, cases: Sequence[tuple[str, int]],
                        camera: str = "corner", encoder=None) -> dict[str, Tensor]:
    """Return the planner's conditioning (B = len(cases)) from Meta-World first frames.

    Frames go through the planner's preprocessing and instructions through the model's text
    encoder (or ``encoder``), so samplers see what a real plan sees. Imports the simulator.
    """
    from dts_planner.models.preprocessing import prepare_image
    from dts_planner.models.text_encoders import make_text_encoder
    from dts_planner.sim import MetaWorldEnv

    config = model.config
    frames, instructions = [], []
    for task, seed in cases:
        with MetaWorldEnv(task, camera, seed=seed, resolution=max(config.image_size),
                          depth_views=False) as env:
            frames.append(prepare_image(env.reset().rgb, config.image_size, config.preprocess))
            instructions.append(env.instruction)
    encoder = encoder or make_text_encoder(config.text_encoder)
    return model.make_cond(image_to_cond(np.stack(frames)), encoder.encode(instructions))


def time_round_robin(calls: Mapping[Key, Callable[[], object]], repeats: int,
                     per_round: int = 1, warmup: int = 0) -> dict[Key, list[float]]:
    """Seconds of ``repeats`` timed runs of each call, the calls taking turns.

    Each turn runs one call ``per_round`` times in a row; turns go round-robin over the calls,
    so a change of machine load hits them all alike. ``warmup`` untimed runs each come first.
    """
    for call in calls.values():
        for _ in range(warmup):
            call()
    times: dict[Key, list[float]] = {key: [] for key in calls}
    while any(len(values) < repeats for values in times.values()):
        for key, call in calls.items():
            for _ in range(min(per_round, repeats - len(times[key]))):
                start = time.perf_counter()
                call()
                times[key].append(time.perf_counter() - start)
    return times


def fidelity(sample: Tensor, reference: Tensor) -> tuple[float, float]:
    """RMS error and PSNR (dB) between plans in [0, 1] image space (clamped like the output)."""
    a = ((sample + 1) / 2).clamp(0, 1)
    b = ((reference + 1) / 2).clamp(0, 1)
    value = float(psnr(a, b, peak=1.0))
    return math.sqrt(float((a - b).pow(2).mean())), value


def machine_line() -> str:
    """CPU model, cores, torch threads, load average, GPUs and the git commit that ran."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    commit = _git("rev-parse", "--short", "HEAD") or "no commit"
    dirty = " + uncommitted changes" if _git("status", "--porcelain", "--untracked-files=no") \
        else ""
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    gpus = (", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
            if torch.cuda.is_available() else "none")
    return (f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} with "
            f"{torch.get_num_threads()} threads, load average {load}; CUDA GPUs: {gpus} "
            f"(the benchmark runs on the CPU); commit {commit}{dirty}")


def _git(*args: str) -> str:
    """Output of a read-only git command in the package's checkout, '' on failure."""
    try:
        return subprocess.run(["git", *args], cwd=PACKAGE_DIR, capture_output=True, text=True,
                              check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
