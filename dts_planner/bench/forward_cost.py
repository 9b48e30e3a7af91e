"""Forward cost of the default video model at batch 1, at its own image size and at others.

    python -m dts_planner.bench forward_cost [--sizes 64] [--calls 60] [--threads 2]

One call is one U-Net evaluation with the text already pooled, as in every sampler step
(through ``predict``, so with the sampler's NaN check). The shipped default runs with its
weights; the other rows are the same U-Net at other square image sizes with random weights (the
cost does not depend on the weights). Models are called round-robin in rounds of
``--per-round`` calls, so a change of machine load hits them alike. Prints per model: GFLOP per
call, median / 10th percentile / minimum milliseconds, the median's ratio to the first row, and
whether the median meets the 20 ms target of issue 4.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from functools import partial
import statistics

import torch
from torch.utils.flop_counter import FlopCounterMode

from dts_planner.bench.common import random_condition, time_round_robin
from dts_planner.diffusion import predict
from dts_planner.models import load_video_model, random_video_model, VideoDiffusionModel

TARGET_MS = 20.0
Inputs = tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]


def batch1_inputs(model: VideoDiffusionModel, seed: int) -> Inputs:
    """Noise (1, F*3, H, W), step t = 50 and a random image/text conditioning for ``model``."""
    noise = torch.randn(model.noise_shape(1), generator=torch.Generator().manual_seed(seed))
    return noise, torch.tensor([50]), random_condition(model, 1, seed)


def gflop_per_call(model: VideoDiffusionModel, inputs: Inputs) -> float:
    """Floating-point operations of one call, in GFLOP (a multiply-add counts 2)."""
    with FlopCounterMode(display=False) as counter:
        predict(model, *inputs, "flop count")
    return counter.get_total_flops() / 1e9


def time_models(models: dict[str, VideoDiffusionModel], calls: int, per_round: int,
                seed: int) -> dict[str, list[float]]:
    """Seconds of each of ``calls`` batch-1 calls per model, models taking turns."""
    inputs = {name: batch1_inputs(model, seed) for name, model in models.items()}
    return time_round_robin({name: partial(predict, model, *inputs[name], "cost")
                             for name, model in models.items()}, calls, per_round, warmup=3)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m dts_planner.bench forward_cost",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[64],
                        help="other square image sizes (px) of the same U-Net to time")
    parser.add_argument("--calls", type=int, default=60, help="timed calls per model")
    parser.add_argument("--per-round", type=int, default=10, help="calls per model per turn")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Time the models and print the table."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    shipped = load_video_model(None)
    height, width = shipped.config.image_size
    models = {f"default (shipped weights) {height}x{width}": shipped}
    for size in args.sizes:
        config = replace(shipped.config, image_size=(size, size))
        models[f"default U-Net at {size}x{size} (random weights)"] = random_video_model(config)
    gflops = {name: gflop_per_call(model, batch1_inputs(model, args.seed))
              for name, model in models.items()}
    times = time_models(models, args.calls, args.per_round, args.seed)
    print(f"video model forward cost, batch 1, {args.threads} threads, {args.calls} calls each "
          f"(round-robin, {args.per_round} per turn); model: {shipped.config.summary()}")
    print("| model | GFLOP | median ms | p10 ms | min ms | median / first "
          f"| median <= {TARGET_MS:.0f} ms |")
    print("|---|---|---|---|---|---|---|")
    first = None
    for name, values in times.items():
        ms = sorted(1000.0 * value for value in values)
        median = statistics.median(ms)
        first = first or median
        meets = "yes" if median <= TARGET_MS else "no"
        print(f"| {name} | {gflops[name]:.2f} | {median:.1f} | {ms[len(ms) // 10]:.1f} "
              f"| {ms[0]:.1f} | {median / first:.2f}x | {meets} |")
    return 0
