"""Sampler benchmark: DDPM-100, DDIM-N, DPM-Solver++ and DTS on one model, same noise, one run.

    python -m dts_planner.bench samplers [--model default|random|PATH] [--batch 1] [--repeats 5]

Reports per sampler: median wall time, speedup over DDPM-100, NFE, depth, fidelity of the final
plan against DDPM-100 and DDIM-100 (RMS and PSNR in [0, 1] image space), and for DTS its rounds,
accepted tokens and the all-accept bound (the wall time if every draft token were accepted,
from the measured cost of each batch size) with DTS's ratio to it. Also prints the measured
forward cost per batch size (on a 3D U-Net this shows the CPU Conv3d batch-1 slow path).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
import json
import math
import statistics
import time

import torch
from torch import Tensor

from dts_planner.diffusion import (Cond, DDIMSampler, DDPMSampler, DPMSolverSampler,
                                   DTSSampler, predict, Sampler, SampleResult)
from dts_planner.models import get_preset, load_video_model, VideoDiffusionModel

#: The paper's Meta-World threshold is an absolute L2 over 21 x 128 x 128 elements; as an
#: RMS per element it carries to any resolution: lambda0 = 11, Delta = 1.5 -> these.
PAPER_ELEMENTS = 21 * 128 * 128
PAPER_RMS_THRESHOLD = 11.0 / math.sqrt(PAPER_ELEMENTS)
PAPER_RMS_INCREMENT = 1.5 / math.sqrt(PAPER_ELEMENTS)


@dataclass
class BenchRow:
    """One sampler's measurements (times in seconds)."""

    label: str
    median_time: float
    result: SampleResult
    bound: float | None = None


def parse_dts(spec: str) -> DTSSampler:
    """Build a DTSSampler from ``key=value`` pairs, e.g. ``chunk=10,target_stride=5``."""
    params: dict[str, object] = {}
    for item in filter(None, spec.split(",")):
        key, value = item.split("=")
        params[key] = value if key in ("distance", "progression") else (
            int(value) if key in ("draft_stride", "target_stride", "chunk", "max_rounds")
            else float(value))
    return DTSSampler(**params)


def default_cases(tuned: str) -> list[tuple[str, Sampler]]:
    """Return the (label, sampler) list: baselines, DTS with paper settings and the tuned one."""
    paper_rms = dict(distance="rms", threshold=PAPER_RMS_THRESHOLD,
                     increment=PAPER_RMS_INCREMENT)
    return [
        ("DDPM-100", DDPMSampler()),
        ("DDIM-100", DDIMSampler(100)),
        ("DDIM-50", DDIMSampler(50)),
        ("DDIM-10", DDIMSampler(10)),
        ("DPM-Solver++ 10", DPMSolverSampler(10)),
        ("DPM-Solver++ 20", DPMSolverSampler(20)),
        ("DTS paper k=10", DTSSampler(10, 2, chunk=10, **paper_rms)),
        ("DTS paper k=6", DTSSampler(10, 2, chunk=6, **paper_rms)),
        (f"DTS tuned ({tuned})", parse_dts(tuned)),
    ]


def build_model(spec: str, preset: str, seed: int) -> VideoDiffusionModel:
    """Load ``default`` (the embedded model), a checkpoint PATH, or ``random`` weights."""
    if spec == "random":
        torch.manual_seed(seed)
        return VideoDiffusionModel(get_preset(preset)).eval()
    return load_video_model(None if spec == "default" else spec)


def random_condition(model: VideoDiffusionModel, batch: int, seed: int) -> dict[str, Tensor]:
    """Return a random conditioning frame (B, 3, H, W) in [0, 1] and text tokens (B, 8, D)."""
    generator = torch.Generator().manual_seed(seed + 1)
    image = torch.rand((batch, 3, *model.config.image_size), generator=generator)
    text = torch.randn((batch, 8, model.config.text_dim), generator=generator)
    return model.make_cond(image, text)


def measure_forward_costs(model: VideoDiffusionModel, noise: Tensor, cond: Cond,
                          batch_sizes: list[int], repeats: int) -> dict[int, float]:
    """Median seconds of one model call (with the sampler's NaN check) per batch size."""
    costs = {}
    for size in batch_sizes:
        rows = torch.arange(size) % noise.shape[0]
        x, t = noise[rows], torch.full((size,), 50)
        sized_cond = {key: value[rows] for key, value in cond.items()}
        predict(model, x, t, sized_cond, "warm-up")
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            predict(model, x, t, sized_cond, "cost")
            times.append(time.perf_counter() - start)
        costs[size] = statistics.median(times)
    return costs


def time_sampler(sampler: Sampler, model: VideoDiffusionModel, noise: Tensor, cond: Cond,
                 seed: int, repeats: int) -> tuple[float, SampleResult]:
    """Median wall time over ``repeats`` runs (same noise and seed) and the last result."""
    times = []
    for _ in range(repeats):
        result = sampler.sample(model, noise, cond, torch.Generator().manual_seed(seed))
        times.append(result.stats.wall_time)
    return statistics.median(times), result


def fidelity(sample: Tensor, reference: Tensor) -> tuple[float, float]:
    """RMS error and PSNR (dB) between plans in [0, 1] image space (clamped like the output)."""
    a = ((sample + 1) / 2).clamp(0, 1)
    b = ((reference + 1) / 2).clamp(0, 1)
    mse = float(((a - b) ** 2).mean())
    return math.sqrt(mse), (math.inf if mse == 0 else 10 * math.log10(1.0 / mse))


def format_table(rows: list[BenchRow], references: dict[str, Tensor]) -> str:
    """Markdown table of the benchmark rows."""
    baseline = rows[0].median_time
    header = ("| sampler | wall s | speedup | NFE | depth | RMS/PSNR vs DDPM-100 "
              "| RMS/PSNR vs DDIM-100 | rounds | accepted/round | all-accept bound s | "
              "bound/wall |")
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for row in rows:
        stats = row.result.stats
        vs = [fidelity(row.result.sample, reference) for reference in references.values()]
        accepted = ",".join(str(sum(r)) for r in stats.accepted_per_round) or "-"
        bound = "-" if row.bound is None else f"{row.bound:.3f}"
        ratio = "-" if row.bound is None else f"{row.bound / row.median_time:.0%}"
        lines.append(
            f"| {row.label} | {row.median_time:.3f} | {baseline / row.median_time:.2f}x "
            f"| {stats.nfe} | {stats.depth} | {vs[0][0]:.4f} / {vs[0][1]:.1f} dB "
            f"| {vs[1][0]:.4f} / {vs[1][1]:.1f} dB | {stats.rounds or '-'} | {accepted} "
            f"| {bound} | {ratio} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m dts_planner.bench samplers",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="default",
                        help="'default' (embedded), 'random' (random weights) or a checkpoint")
    parser.add_argument("--preset", default="default", help="config of a --model random")
    parser.add_argument("--batch", type=int, default=1, help="plans sampled together")
    parser.add_argument("--repeats", type=int, default=5, help="runs per sampler (median)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--tuned", default="draft_stride=10,target_stride=5,chunk=10,"
                        f"distance=rms,threshold={2 * PAPER_RMS_THRESHOLD:.4f},"
                        f"increment={PAPER_RMS_INCREMENT:.5f}",
                        help="DTSSampler settings of the tuned row, key=value,...")
    parser.add_argument("--json", help="also write the measurements to this file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    model = build_model(args.model, args.preset, args.seed)
    noise = torch.randn(model.noise_shape(args.batch),
                        generator=torch.Generator().manual_seed(args.seed))
    cond = random_condition(model, args.batch, args.seed)
    cases = default_cases(args.tuned)
    num_train_timesteps = model.schedule.num_train_timesteps
    dts_sizes = {size for _, sampler in cases if isinstance(sampler, DTSSampler)
                 for size in sampler.all_accept_batch_sizes(num_train_timesteps, args.batch)}
    costs = measure_forward_costs(model, noise, cond, sorted(dts_sizes | {1, 2, args.batch}),
                                  args.repeats)
    print(f"model: {args.model} ({model.config.summary()}), batch {args.batch}, "
          f"threads {args.threads}, repeats {args.repeats}")
    print("forward cost per batch size (ms): " + ", ".join(
        f"B={size}: {1000 * cost:.1f}" for size, cost in costs.items()))
    if model.config.unet.dims == 3:
        print(f"Conv3d batch-1 slow path: B=1 {1000 * costs[1]:.1f} ms vs B=2 "
              f"{1000 * costs[2]:.1f} ms")
    rows = []
    for label, sampler in cases:
        median_time, result = time_sampler(sampler, model, noise, cond, args.seed, args.repeats)
        bound = (sum(costs[size] for size in sampler.all_accept_batch_sizes(
            num_train_timesteps, args.batch)) if isinstance(sampler, DTSSampler) else None)
        rows.append(BenchRow(label, median_time, result, bound))
        print(f"  {label}: {median_time:.3f} s", flush=True)
    references = {"DDPM-100": rows[0].result.sample, "DDIM-100": rows[1].result.sample}
    print(format_table(rows, references))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"args": vars(args), "forward_cost_s": costs, "rows": [
                {"label": row.label, "median_time_s": row.median_time, "bound_s": row.bound,
                 "fidelity": {name: fidelity(row.result.sample, ref)
                              for name, ref in references.items()},
                 "stats": {key: value for key, value in vars(row.result.stats).items()}}
                for row in rows]}, handle, indent=1)
    return 0
