"""The benchmarks' pieces on a tiny random-weight video model (seconds, not minutes)."""

import math

import pytest
import torch

from dts_planner.bench import __main__ as bench_cli
from dts_planner.bench.common import fidelity, time_round_robin
from dts_planner.bench.samplers import (BenchRow, default_cases, format_table,
                                        measure_forward_costs, time_samplers)
from dts_planner.common.images import psnr
from dts_planner.models import random_video_model, TINY_CONFIG, VideoModelConfig


def test_sampler_bench_rows_compare_different_plans(tiny_problem):
    model = tiny_problem.model
    noise = tiny_problem.noise[:1]
    cond = {key: value[:1] for key, value in tiny_problem.cond.items()}
    costs = measure_forward_costs(model, noise, cond, [1, 2], repeats=2)
    assert set(costs) == {1, 2} and all(cost > 0 for cost in costs.values())
    cases = dict(default_cases("dts:chunk=5,target_stride=5,distance=rms,threshold=1e9"))
    labels = ["DDIM-10", "DPM-Solver++ 10", "DTS tuned (dts:chunk=5,target_stride=5,"
              "distance=rms,threshold=1e9)"]
    timings = time_samplers([cases[label] for label in labels], model, noise, cond, 0, 2)
    rows = [BenchRow(label, *timing) for label, timing in zip(labels, timings)]
    plans = [row.result.sample for row in rows]
    assert (plans[0] - plans[1]).abs().max() > 1e-3       # a nonzero model: samplers differ
    table = format_table(rows, {"DDIM-10": plans[0], "DPM": plans[1]}).splitlines()
    assert len(table) == 5 and table[2].startswith("| DDIM-10 |")
    rms, db = fidelity(plans[2], plans[1])
    assert math.isfinite(db) and f"{rms:.4f} / {db:.1f} dB" in table[4]
    assert table[2].count("inf dB") == 1 and "inf dB" not in table[4]   # only self vs self
    assert rows[2].result.stats.depth == 2 * (5 + 1)    # all-accept: 2 chunks of 5 + 1 fine call


def test_fidelity_is_rms_and_psnr_in_image_space_and_psnr_is_shared():
    zero, half = torch.full((1, 3, 2, 2), -1.0), torch.zeros(1, 3, 2, 2)
    assert fidelity(zero, half) == (0.5, pytest.approx(10 * math.log10(4)))
    assert fidelity(half, half)[1] == math.inf
    a = torch.zeros(1, 6, 2, 2)
    assert psnr(a, a + 0.2, peak=2.0, dim=(1, 2, 3)).item() == pytest.approx(10 * math.log10(100))
    image = torch.zeros(2, 2, 3, dtype=torch.uint8)
    other = image.clone()
    other[0, 0] = 255
    mask = torch.tensor([[True, False], [False, False]])
    assert psnr(image, other, peak=255.0, mask=mask).item() == 0.0      # uint8: no wrap-around
    assert psnr(image, other, peak=255.0, mask=~mask).item() == math.inf
    assert bench_cli.main(["nonexistent"]) == 2 and "samplers" in bench_cli.COMMANDS


def test_round_robin_timer_interleaves_calls_and_skips_the_warm_up():
    order = []
    times = time_round_robin({"a": lambda: order.append("a"), "b": lambda: order.append("b")},
                             repeats=3, per_round=2, warmup=1)
    assert order == ["a", "b", "a", "a", "b", "b", "a", "b"]
    assert [len(values) for values in times.values()] == [3, 3]
    assert all(value >= 0 for values in times.values() for value in values)


def test_forward_cost_counts_flops_by_image_size_and_times_every_model():
    """4x the pixels: 4x the conv FLOPs, 16x the attention's; each model gets as many calls."""
    from dts_planner.bench.forward_cost import batch1_inputs, gflop_per_call, time_models

    small = random_video_model(TINY_CONFIG)
    large = random_video_model(VideoModelConfig(image_size=(16, 16), num_frames=2,
                                                unet=TINY_CONFIG.unet))
    ratio = gflop_per_call(large, batch1_inputs(large, 0)) / gflop_per_call(
        small, batch1_inputs(small, 0))
    assert 4.0 < ratio < 5.0   # the middle block's attention is its only quadratic part
    times = time_models({"small": small, "large": large}, calls=4, per_round=2, seed=0)
    assert [len(values) for values in times.values()] == [4, 4]
    assert all(value > 0 for values in times.values() for value in values)
