"""Summaries of closed-loop episodes: per-method, per-task table (markdown, CSV) and a GIF."""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from PIL import Image

from dts_planner.eval.closed_loop import EpisodeResult

ALL_TASKS = "all"


@dataclass
class SummaryRow:
    """Aggregate of the episodes of one method on one task (or all tasks)."""

    method: str
    task: str
    episodes: int
    success_rate: float
    mean_steps: float
    plans_per_episode: float
    plan_time_mean_s: float
    plan_time_p95_s: float
    nfe_mean: float
    depth_mean: float
    speedup_vs_ddpm: float


def _plan_times(episodes: Sequence[EpisodeResult]) -> np.ndarray:
    return np.array([p.time_s for e in episodes for p in e.plans], dtype=float)


def summarize(results: Mapping[str, Sequence[EpisodeResult]],
              reference_times: Mapping[str, Sequence[float]]) -> list[SummaryRow]:
    """Rows per method and task, then each method over all tasks.

    reference_times: task (and ALL_TASKS) -> DDPM-100 plan times (s) measured in the same run;
    the speedup is their mean over the method's mean plan time (nan without either).
    """
    rows = []
    for method, episodes in results.items():
        tasks = sorted({e.task for e in episodes})
        for task in [*tasks, ALL_TASKS]:
            chosen = [e for e in episodes if task in (ALL_TASKS, e.task)]
            times = _plan_times(chosen)
            plans = [p for e in chosen for p in e.plans]
            reference = np.asarray(reference_times.get(task, []), dtype=float)
            mean_time = float(times.mean()) if len(times) else float("nan")
            speedup = (float(reference.mean()) / mean_time
                       if len(reference) and len(times) and mean_time > 0 else float("nan"))
            rows.append(SummaryRow(
                method=method, task=task, episodes=len(chosen),
                success_rate=float(np.mean([e.success for e in chosen])),
                mean_steps=float(np.mean([e.steps for e in chosen])),
                plans_per_episode=len(plans) / len(chosen),
                plan_time_mean_s=mean_time,
                plan_time_p95_s=float(np.percentile(times, 95)) if len(times) else float("nan"),
                nfe_mean=float(np.mean([p.nfe for p in plans])) if plans else float("nan"),
                depth_mean=float(np.mean([p.depth for p in plans])) if plans else float("nan"),
                speedup_vs_ddpm=speedup))
    return rows


def _number(value: float, spec: str, suffix: str = "") -> str:
    """Format a number, or "-" for nan (nothing planned, no reference)."""
    return "-" if np.isnan(value) else f"{value:{spec}}{suffix}"


def markdown_table(rows: Sequence[SummaryRow]) -> str:
    """Github-flavoured markdown table of the rows."""
    header = ("| method | task | episodes | success | steps | plans/ep | plan time mean (s) "
              "| p95 (s) | NFE | depth | speedup vs DDPM-100 |")
    lines = [header, "|" + "---|" * 11]
    for r in rows:
        lines.append(
            f"| {r.method} | {r.task} | {r.episodes} | {100 * r.success_rate:.0f}% "
            f"| {r.mean_steps:.0f} | {r.plans_per_episode:.1f} "
            f"| {_number(r.plan_time_mean_s, '.3f')} | {_number(r.plan_time_p95_s, '.3f')} "
            f"| {_number(r.nfe_mean, '.1f')} | {_number(r.depth_mean, '.1f')} "
            f"| {_number(r.speedup_vs_ddpm, '.2f', 'x')} |")
    return "\n".join(lines) + "\n"


def write_csv(rows: Sequence[SummaryRow], path: str | Path) -> None:
    """Write the rows to a CSV file with a header line."""
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(asdict(rows[0])))
        writer.writeheader()
        writer.writerows(asdict(r) for r in rows)


def write_gif(frames: Sequence[tuple[np.ndarray, np.ndarray]], path: str | Path,
              scale: int = 3, every: int = 2, frame_ms: int = 60) -> None:
    """GIF of (observation, plan frame) pairs side by side, every `every`-th step, upscaled."""
    images = []
    for observation, plan in frames[::every]:
        height = observation.shape[0]
        if plan.shape[:2] != observation.shape[:2]:
            plan = np.asarray(Image.fromarray(plan).resize(observation.shape[1::-1]))
        pair = np.concatenate([observation, np.full((height, 2, 3), 255, np.uint8), plan], 1)
        image = Image.fromarray(pair)
        images.append(image.resize((image.width * scale, image.height * scale), Image.NEAREST))
    images[0].save(path, save_all=True, append_images=images[1:], duration=frame_ms, loop=0)
