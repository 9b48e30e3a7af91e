"""Summaries of closed-loop episodes: per-method, per-task tables (markdown, CSV) and a GIF.

`markdown_table` lists every method and task; `paper_table` lays the methods out like the DTS
paper's Table 2 (success per task and overall with a 95 % Wilson interval, plan time, speed-up
over DDPM-100, NFE, depth) and compares each method with DDPM-100 on the same episodes (exact
McNemar test on the discordant pairs).
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from PIL import Image
from scipy.stats import binomtest

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


def wilson_interval(successes: int, trials: int) -> tuple[float, float]:
    """95 % Wilson score interval of a success rate (scipy); (nan, nan) without trials."""
    if trials == 0:
        return float("nan"), float("nan")
    interval = binomtest(successes, trials).proportion_ci(0.95, method="wilson")
    return float(interval.low), float(interval.high)


@dataclass(frozen=True)
class PairedComparison:
    """One method against a reference on the episodes both ran (same task, camera, seed).

    only_method: episodes the method solved and the reference did not; only_reference: the
    reverse; p_value: two-sided exact McNemar test (binomial on the discordant pairs).
    """

    pairs: int
    only_method: int
    only_reference: int
    p_value: float


def paired_comparison(method: Sequence[EpisodeResult],
                      reference: Sequence[EpisodeResult]) -> PairedComparison:
    """Compare success episode by episode on the (task, camera, seed) both have."""
    by_key = {(e.task, e.camera, e.seed): e.success for e in reference}
    pairs = [(e.success, by_key[key]) for e in method
             if (key := (e.task, e.camera, e.seed)) in by_key]
    only_method = sum(m and not r for m, r in pairs)
    only_reference = sum(r and not m for m, r in pairs)
    discordant = only_method + only_reference
    p_value = binomtest(only_method, discordant).pvalue if discordant else 1.0
    return PairedComparison(len(pairs), only_method, only_reference, float(p_value))


def paper_table(results: Mapping[str, Sequence[EpisodeResult]],
                reference_times: Mapping[str, Sequence[float]], reference: str) -> str:
    """Markdown: the paper's Table 2 layout, then the statistics and the paired comparison.

    reference: the method every other is compared with (DDPM-100); its plan times are the
    speed-up's numerator when `reference_times` has none.
    """
    tasks = sorted({e.task for episodes in results.values() for e in episodes})
    short = [task.removesuffix("-v3") for task in tasks]
    lines = ["| method | " + " | ".join(short) + " | overall |",
             "|---|" + "---|" * (len(tasks) + 1)]
    for method, episodes in results.items():
        cells = []
        for task in tasks:
            chosen = [e for e in episodes if e.task == task]
            cells.append(f"{100 * np.mean([e.success for e in chosen]):.0f}"
                         if chosen else "-")
        overall = 100 * np.mean([e.success for e in episodes])
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {overall:.1f} |")
    rows = {row.method: row for row in summarize(results, reference_times)
            if row.task == ALL_TASKS}
    lines += ["", "| method | episodes | success [95 % Wilson] | plan time mean / p95 (s) | "
              "speed-up vs DDPM-100 | NFE | depth | vs DDPM-100 on the same episodes "
              "(only it / only DDPM-100, exact p) |", "|---|---|---|---|---|---|---|---|"]
    for method, episodes in results.items():
        row = rows[method]
        wins = sum(e.success for e in episodes)
        low, high = wilson_interval(wins, len(episodes))
        paired = ("(reference)" if method == reference or reference not in results else
                  "{1} / {2}, p = {3:.3f} ({0} pairs)".format(
                      *vars(paired_comparison(episodes, results[reference])).values()))
        lines.append(
            f"| {method} | {len(episodes)} | {100 * wins / len(episodes):.1f} % "
            f"[{100 * low:.1f}, {100 * high:.1f}] | {_number(row.plan_time_mean_s, '.3f')} / "
            f"{_number(row.plan_time_p95_s, '.3f')} | {_number(row.speedup_vs_ddpm, '.2f', 'x')}"
            f" | {_number(row.nfe_mean, '.1f')} | {_number(row.depth_mean, '.1f')} | "
            f"{paired} |")
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
