"""The sampler benchmark's pieces on a tiny random-weight video model (seconds, not minutes)."""

import math

import torch

from dts_planner.bench import __main__ as bench_cli
from dts_planner.bench.samplers import (BenchRow, default_cases, fidelity, format_table,
                                        measure_forward_costs, random_condition,
                                        time_samplers)
from dts_planner.diffusion import DTSSampler, parse_spec
from dts_planner.models import UNetConfig, VideoDiffusionModel, VideoModelConfig

TINY = VideoModelConfig(image_size=(8, 8), num_frames=2, unet=UNetConfig(
    model_channels=32, num_res_blocks=1, channel_mult=(1,), attention_resolutions=(),
    dims=2, task_token_channels=32))


def test_bench_pieces_on_a_tiny_model():
    torch.manual_seed(0)
    model = VideoDiffusionModel(TINY).eval()
    noise = torch.randn(model.noise_shape(1), generator=torch.Generator().manual_seed(0))
    cond = random_condition(model, 1, seed=0)
    costs = measure_forward_costs(model, noise, cond, [1, 2], repeats=1)
    assert set(costs) == {1, 2} and all(cost > 0 for cost in costs.values())
    cases = dict(default_cases("dts:chunk=5,target_stride=5,distance=rms,threshold=1e9"))
    labels = ["DDIM-10", "DPM-Solver++ 10", "DTS tuned (dts:chunk=5,target_stride=5,distance=rms,"
              "threshold=1e9)"]
    timings = time_samplers([cases[label] for label in labels], model, noise, cond, 0, 1)
    rows = [BenchRow(label, *timing) for label, timing in zip(labels, timings)]
    table = format_table(rows, {"a": rows[0].result.sample, "b": rows[1].result.sample})
    assert table.count("\n") == 4 and "| DDIM-10 |" in table and "inf dB" in table
    assert rows[2].result.stats.depth == 2 * (5 + 1)   # all-accept: 2 chunks of 5 + 1 fine call


def test_dts_spec_fidelity_and_dispatcher():
    sampler = parse_spec("dts:draft_stride=20,target_stride=5,chunk=3,distance=rms,"
                         "threshold=0.02").build()
    assert isinstance(sampler, DTSSampler)
    assert (sampler.draft_stride, sampler.chunk, sampler.distance) == (20, 3, "rms")
    assert sampler.all_accept_batch_sizes(100) == [1, 1, 1, 3, 3, 3, 1, 1, 2, 2, 2]
    zero, half = torch.full((1, 3, 2, 2), -1.0), torch.zeros(1, 3, 2, 2)
    assert fidelity(zero, half) == (0.5, 10 * math.log10(4))
    assert bench_cli.main(["nonexistent"]) == 2 and "samplers" in bench_cli.COMMANDS


def test_forward_cost_counts_flops_by_image_size_and_times_every_model():
    """4x the pixels: 4x the conv FLOPs, 16x the attention's; each model gets as many calls."""
    from dts_planner.bench.forward_cost import batch1_inputs, gflop_per_call, time_round_robin

    small = VideoDiffusionModel(TINY).eval()
    large = VideoDiffusionModel(VideoModelConfig(
        image_size=(16, 16), num_frames=2, unet=TINY.unet)).eval()
    ratio = gflop_per_call(large, batch1_inputs(large, 0)) / gflop_per_call(
        small, batch1_inputs(small, 0))
    assert 4.0 < ratio < 5.0   # the middle block's attention is its only quadratic part
    times = time_round_robin({"small": small, "large": large}, calls=4, per_round=2, seed=0)
    assert [len(values) for values in times.values()] == [4, 4]
    assert all(value > 0 for values in times.values() for value in values)
