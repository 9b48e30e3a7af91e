"""Sampler benchmark: DDPM-100, DDIM-N, DPM-Solver++ and DTS on one model, same noise, one run.

    python -m dts_planner.bench samplers [--model default|random|PATH] [--batch 1] [--repeats 5]

Reports per sampler: median wall time, speedup over DDPM-100, NFE, depth, fidelity of the final
plan against DDPM-100 and DDIM-100 (RMS and PSNR in [0, 1] image space), and for DTS its rounds,
accepted tokens and the all-accept bound (the wall time if every draft token were accepted,
from the measured cost of each batch size) with DTS's ratio to it. Also prints the measured
forward cost per batch size: B=1 against B=2 exposes a batch-1 slow path (a real Conv3d at
batch 1 runs PyTorch's slow native kernel on CPU; DTS drafts run at batch 1).
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
from functools import partial
import json
import math
import statistics

import torch
from torch import Tensor

from dts_planner.bench.common import (fidelity, metaworld_condition, random_condition,
                                      time_round_robin)
from dts_planner.diffusion import (Cond, DDIMSampler, DDPMSampler, DPMSolverSampler,
                                   DTSSampler, parse_spec, predict, Sampler, SampleResult)
from dts_planner.models import (get_preset, load_video_model, random_video_model,
                                VideoDiffusionModel)

#: The paper's thresholds are absolute L2 norms over the whole video in model space, lambda0 = 11
#: and Delta = 1.5 on Meta-World (21 x 128 x 128 elements, k = 10) and on iTHOR (21 x 64 x 64,
#: k = 6). As RMS per element they carry to any resolution:
PAPER_METAWORLD_RMS = dict(distance="rms", threshold=11.0 / math.sqrt(21 * 128 * 128),
                           increment=1.5 / math.sqrt(21 * 128 * 128))
PAPER_ITHOR_RMS = dict(distance="rms", threshold=11.0 / math.sqrt(21 * 64 * 64),
                       increment=1.5 / math.sqrt(21 * 64 * 64))


@dataclass
class BenchRow:
    """One sampler's measurements (times in seconds)."""

    label: str
    median_time: float
    result: SampleResult
    bound: float | None = None


def default_cases(tuned: str) -> list[tuple[str, Sampler]]:
    """Return the (label, sampler) list: baselines, DTS with paper settings and ``tuned``.

    ``tuned`` is a sampler spec (``dts_planner.diffusion.parse_spec``), e.g. ``dts:chunk=10``.
    """
    return [
        ("DDPM-100", DDPMSampler()),
        ("DDIM-100", DDIMSampler(100)),
        ("DDIM-50", DDIMSampler(50)),
        ("DDIM-10", DDIMSampler(10)),
        ("DPM-Solver++ 10", DPMSolverSampler(10)),
        ("DPM-Solver++ 20", DPMSolverSampler(20)),
        ("DTS paper Meta-World k=10", DTSSampler(10, 2, chunk=10, **PAPER_METAWORLD_RMS)),
        ("DTS paper iTHOR k=6", DTSSampler(10, 2, chunk=6, **PAPER_ITHOR_RMS)),
        (f"DTS tuned ({tuned})", parse_spec(tuned).build()),
    ]


def build_model(spec: str, preset: str, seed: int) -> VideoDiffusionModel:
    """Load ``default`` (the embedded model), a checkpoint PATH, or ``random`` weights."""
    if spec == "random":
        return random_video_model(get_preset(preset), seed)
    return load_video_model(None if spec == "default" else spec)


def measure_forward_costs(model: VideoDiffusionModel, noise: Tensor, cond: Cond,
                          batch_sizes: list[int], repeats: int) -> dict[int, float]:
    """Median seconds of one model call (with the sampler's NaN checks) per batch size.

    Sizes are measured round-robin, so a change of machine load hits them all alike.
    """
    calls = {}
    for size in batch_sizes:
        rows = torch.arange(size) % noise.shape[0]
        inputs = (noise[rows], torch.full((size,), 50),
                  {key: value[rows] for key, value in cond.items()})
        calls[size] = partial(predict, model, *inputs, "cost")
    times = time_round_robin(calls, repeats, warmup=1)
    return {size: statistics.median(values) for size, values in times.items()}


def time_samplers(samplers: list[Sampler], model: VideoDiffusionModel, noise: Tensor,
                  cond: Cond, seed: int, repeats: int) -> list[tuple[float, SampleResult]]:
    """Return each sampler's median wall time over ``repeats`` runs and its last result.

    Same noise and seed every run; the runs go round-robin over the samplers, so a change of
    machine load hits them all alike.
    """
    results: dict[int, SampleResult] = {}

    def run(index: int) -> None:
        results[index] = samplers[index].sample(model, noise, cond,
                                                torch.Generator().manual_seed(seed))
    times = time_round_robin({index: partial(run, index) for index in range(len(samplers))},
                             repeats)
    return [(statistics.median(times[index]), results[index]) for index in range(len(samplers))]


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
    parser.add_argument("--cond", choices=("sim", "random"), default="sim",
                        help="Meta-World frame + instruction, or random image and text tokens")
    parser.add_argument("--task", default="door-open", help="Meta-World task of --cond sim")
    parser.add_argument("--camera", default="corner", help="camera of --cond sim")
    parser.add_argument("--batch", type=int, default=1, help="plans sampled together")
    parser.add_argument("--repeats", type=int, default=5, help="runs per sampler (median)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--tuned", default="dts:draft_stride=10,target_stride=5,chunk=10,"
                        "distance=rms,threshold={threshold:.4f},increment={increment:.5f}"
                        .format(**PAPER_ITHOR_RMS),
                        help="sampler spec of the tuned row, e.g. dts:chunk=10,threshold=0.02")
    parser.add_argument("--json", help="also write the measurements to this file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    model = build_model(args.model, args.preset, args.seed)
    noise = torch.randn(model.noise_shape(args.batch),
                        generator=torch.Generator().manual_seed(args.seed))
    cond = (metaworld_condition(model, [(args.task, args.seed + offset)
                                        for offset in range(args.batch)], args.camera)
            if args.cond == "sim" else random_condition(model, args.batch, args.seed))
    cases = default_cases(args.tuned)
    num_train_timesteps = model.schedule.num_train_timesteps
    dts_sizes = {size for _, sampler in cases if isinstance(sampler, DTSSampler)
                 for size in sampler.all_accept_batch_sizes(num_train_timesteps, args.batch)}
    costs = measure_forward_costs(model, noise, cond, sorted(dts_sizes | {1, 2, args.batch}),
                                  args.repeats)
    print(f"model: {args.model} ({model.config.summary()}), cond {args.cond} "
          f"({args.task}, {args.camera}), batch {args.batch}, threads {args.threads}, "
          f"repeats {args.repeats}")
    print("forward cost per batch size (ms): " + ", ".join(
        f"B={size}: {1000 * cost:.1f}" for size, cost in costs.items()))
    timings = time_samplers([sampler for _, sampler in cases], model, noise, cond, args.seed,
                            args.repeats)
    rows = []
    for (label, sampler), (median_time, result) in zip(cases, timings):
        bound = (sum(costs[size] for size in sampler.all_accept_batch_sizes(
            num_train_timesteps, args.batch)) if isinstance(sampler, DTSSampler) else None)
        rows.append(BenchRow(label, median_time, result, bound))
    references = {"DDPM-100": rows[0].result.sample, "DDIM-100": rows[1].result.sample}
    print(format_table(rows, references))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"args": vars(args), "forward_cost_s": costs, "rows": [
                {"label": row.label, "median_time_s": row.median_time, "bound_s": row.bound,
                 "fidelity": {name: fidelity(row.result.sample, ref)
                              for name, ref in references.items()},
                 "stats": asdict(row.result.stats)}
                for row in rows]}, handle, indent=1)
    return 0
