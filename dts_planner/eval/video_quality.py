"""Quality bar of a video model: does the last frame of a plan show the task done.

``python -m dts_planner.eval.video_quality --out runs/video_quality``

For held-out seeds (>= 1000; training data uses lower seeds), every task and camera, the scripted
expert is rolled out to get the true final frame. From the first observation each sampler plans
once; we compare the plan's last frame with the true final frame (PSNR over the whole image and
over the pixels that change between the first and final true frames), against the same scores
for the current observation (what a model that imagines nothing would get). Writes
``video_quality.md`` (per-task table), ``video_quality.csv`` (every case) and ``grid_<task>.png``
(true frames, then each sampler's plan, conditioning frame first).
"""

from __future__ import annotations

import argparse
import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image
import torch
from tqdm import tqdm

from dts_planner.common.images import labelled_grid, psnr as image_psnr
from dts_planner.data import clip_frame_indices
from dts_planner.models.configs import VideoModelConfig
from dts_planner.models.preprocessing import prepare_frames
from dts_planner.sim import AVDC_CAMERAS, DEFAULT_TASKS, MetaWorldEnv

SAMPLER_LABELS = {"ddpm": "DDPM-100", "ddim:num_steps=10": "DDIM-10", "dts": "DTS"}
#: A pixel "changes" when a colour channel moves by more than this between first and last frame.
CHANGE_THRESHOLD = 24


@dataclass
class ExpertCase:
    """One held-out expert demonstration: frames (T + 1, H, W, 3) uint8 from reset to success."""

    task: str
    camera: str
    seed: int
    instruction: str
    frames: np.ndarray


def psnr(image: np.ndarray, reference: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Return the PSNR (dB, peak 255) of uint8 images (H, W, 3), over ``mask`` (H, W) if given.

    The squared error is floored at 1e-10 (identical images score about 148 dB).
    """
    return float(image_psnr(image, reference, peak=255.0, mask=mask, min_mse=1e-10))


def seed_range(text: str) -> range:
    """Held-out seeds from ``START:STOP`` (STOP excluded)."""
    start, _, stop = text.partition(":")
    return range(int(start), int(stop))


def changed_pixels(first: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Mask (H, W) of pixels whose colour changes by more than CHANGE_THRESHOLD."""
    difference = np.abs(first.astype(np.int16) - last.astype(np.int16)).max(axis=-1)
    return difference > CHANGE_THRESHOLD


def expert_case(task: str, camera: str, seed: int, resolution: int,
                model_config: VideoModelConfig) -> ExpertCase:
    """Roll out the scripted expert with a ``resolution``-px camera; keep its RGB frames.

    The frames are brought to the model's size as the planner brings a camera image.
    """
    with MetaWorldEnv(task, camera, seed=seed, resolution=resolution, depth_views=False) as env:
        observation, done = env.reset(seed=seed), False
        rgb = [observation.rgb]
        while not done:
            result = env.step(env.expert_action(observation))
            observation, done = result.observation, result.done
            rgb.append(observation.rgb)
        instruction = env.instruction
    frames = prepare_frames(np.stack(rgb), model_config.image_size, model_config.preprocess)
    return ExpertCase(task=task, camera=camera, seed=seed, instruction=instruction,
                      frames=frames)


def score_case(case: ExpertCase, planned_last: np.ndarray) -> dict[str, float]:
    """Score the planned last frame and the current frame against the true last frame (PSNR)."""
    current, target = case.frames[0], case.frames[-1]
    changed = changed_pixels(current, target)
    return {"plan_psnr": psnr(planned_last, target),
            "current_psnr": psnr(current, target),
            "plan_psnr_changed": psnr(planned_last, target, changed),
            "current_psnr_changed": psnr(current, target, changed),
            "changed_fraction": float(changed.mean())}


def plan_grid(case: ExpertCase, plans: dict[str, np.ndarray], scale: int = 2) -> Image.Image:
    """Grid rows: the true episode (start to end), then each plan (conditioning frame first)."""
    columns = len(next(iter(plans.values()))) + 1
    rows = [case.frames[clip_frame_indices(len(case.frames), 0, columns)]]
    rows += [np.concatenate([case.frames[:1], frames]) for frames in plans.values()]
    return labelled_grid(rows, ["expert", *plans], scale)


def evaluate(planner: Any, samplers: Sequence[str], cases: Sequence[ExpertCase],
             out: Path) -> list[dict[str, Any]]:
    """Plan every case with every sampler; write one grid per task; return one row per plan."""
    import dts_planner.peers  # noqa: F401  (the peer samplers may be named too)
    from dts_planner.diffusion import parse_spec

    rows: list[dict[str, Any]] = []
    gridded: set[str] = set()
    for case in tqdm(cases, desc="held-out cases"):
        plans = {}
        for spec in samplers:
            planner.sampler = parse_spec(spec).build()
            torch.manual_seed(case.seed)
            plan = planner.plan(case.frames[0], case.instruction, seed=case.seed)
            plans[SAMPLER_LABELS.get(spec, spec)] = plan.frames
            rows.append({"task": case.task, "camera": case.camera, "seed": case.seed,
                         "sampler": SAMPLER_LABELS.get(spec, spec), "nfe": plan.stats.nfe,
                         "seconds": plan.sampling_time_s,
                         **score_case(case, plan.frames[-1])})
        if case.task not in gridded:
            gridded.add(case.task)
            plan_grid(case, plans).save(out / f"grid_{case.task}.png")
    return rows


def markdown_report(rows: Sequence[dict[str, Any]]) -> str:
    """Per-task table: PSNR (dB) of the last frame vs the true last frame, all / changed pixels."""
    samplers = list(dict.fromkeys(row["sampler"] for row in rows))
    tasks = list(dict.fromkeys(row["task"] for row in rows))

    def mean(task: str | None, sampler: str, key: str) -> float:
        return float(np.mean([row[key] for row in rows if row["sampler"] == sampler
                              and (task is None or row["task"] == task)]))

    header = ["task", "cases", "current frame"] + samplers + [f"{samplers[0]} beats current"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for task in tasks + [None]:
        first = samplers[0]
        cells = [f"{mean(task, s, 'plan_psnr'):.2f} / {mean(task, s, 'plan_psnr_changed'):.2f}"
                 for s in samplers]
        current = (f"{mean(task, first, 'current_psnr'):.2f} / "
                   f"{mean(task, first, 'current_psnr_changed'):.2f}")
        beats = (mean(task, first, "plan_psnr") > mean(task, first, "current_psnr")
                 and mean(task, first, "plan_psnr_changed")
                 > mean(task, first, "current_psnr_changed"))
        count = sum(1 for row in rows if row["sampler"] == first
                    and (task is None or row["task"] == task))
        lines.append("| " + " | ".join([task or "**all**", str(count), current, *cells,
                                        "yes" if beats else "no"]) + " |")
    timing = ["", "| sampler | NFE | seconds per plan |", "|---|---|---|"]
    timing += [f"| {s} | {mean(None, s, 'nfe'):.1f} | {mean(None, s, 'seconds'):.2f} |"
               for s in samplers]
    note = ("PSNR (dB) of the last frame against the expert's true last frame: whole image / "
            "pixels that change during the episode. \"current frame\" scores the observation "
            "the plan starts from.")
    return "\n".join([note, ""] + lines + timing) + "\n"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m dts_planner.eval.video_quality",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="video model checkpoint (default: shipped)")
    parser.add_argument("--tasks", nargs="+", default=list(DEFAULT_TASKS))
    parser.add_argument("--cameras", nargs="+", default=list(AVDC_CAMERAS))
    parser.add_argument("--seeds", type=seed_range, default=range(1000, 1002),
                        help='held-out seeds "START:STOP" (default 1000:1002)')
    parser.add_argument("--samplers", nargs="+", default=list(SAMPLER_LABELS),
                        help='sampler specs, "name" or "name:key=value,..." (parse_spec)')
    parser.add_argument("--resolution", type=int, default=64,
                        help="camera pixels (square), as in the training data")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=Path("runs/video_quality"))
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point."""
    from dts_planner.diffusion import make_sampler
    from dts_planner.models import load_video_model
    from dts_planner.models.text_encoders import make_text_encoder
    from dts_planner.planning import VideoPlanner

    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    model = load_video_model(args.model, device=args.device)
    encoder = make_text_encoder(model.config.text_encoder)
    planner = VideoPlanner(model, encoder, make_sampler("ddpm"), device=args.device)
    cases = [expert_case(task, camera, seed, args.resolution, model.config)
             for task in args.tasks for camera in args.cameras for seed in args.seeds]
    rows = evaluate(planner, args.samplers, cases, args.out)
    with open(args.out / "video_quality.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    report = markdown_report(rows)
    (args.out / "video_quality.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
