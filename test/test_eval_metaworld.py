"""Closed-loop Meta-World smoke run with a tiny random video model (1 task, 1 seed, few steps)."""

import argparse

import pytest
import torch

from dts_planner.eval.metaworld import evaluate, load_log, parse_sampler, parse_seeds, report
from dts_planner.models import UNetConfig, VideoDiffusionModel, VideoModelConfig
from dts_planner.models.text_encoders import make_text_encoder
from dts_planner.planning import VideoPlanner
from dts_planner.diffusion import make_sampler

TINY_VIDEO = VideoModelConfig(
    image_size=(32, 32), num_frames=3,
    unet=UNetConfig(model_channels=32, num_res_blocks=1, channel_mult=(1, 1),
                    attention_resolutions=(), dims=2, task_token_channels=384),
    text_encoder="minilm")


@pytest.fixture(scope="module")
def planner():
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    model = VideoDiffusionModel(TINY_VIDEO).eval()
    yield VideoPlanner(model, make_text_encoder("minilm"), make_sampler("ddpm"))
    torch.set_num_threads(threads)


def _args(**overrides):
    args = argparse.Namespace(tasks=["button-press"], seeds=[1000], camera="corner",
                              resolution=32, sampler=["dts"],
                              predictor="optical_flow", max_steps=8, max_plans=2, gif=True)
    vars(args).update(overrides)
    return args


def test_parsers():
    assert parse_sampler("ddim:num_steps=10,distance=rms") == (
        "ddim", {"num_steps": 10, "distance": "rms"})
    assert parse_sampler("ddpm") == ("ddpm", {})
    assert parse_seeds("1000:1003") == [1000, 1001, 1002] and parse_seeds("4,7") == [4, 7]


def test_closed_loop_smoke_with_tiny_random_model(planner, tmp_path):
    results, reference = evaluate(_args(), planner, log=tmp_path / "episodes.jsonl")
    (episode,) = results["optical_flow/dts"]
    assert episode.actions_in_space
    assert 1 <= episode.steps <= 8
    assert 1 <= len(episode.plans) <= 2
    assert all(p.nfe >= p.depth >= 1 and p.time_s > 0 for p in episode.plans)
    assert len(episode.frames) == episode.steps
    assert len(reference["button-press-v3"]) == 1  # one timing-only DDPM-100 plan
    assert reference["all"] == reference["button-press-v3"]
    table = report(results, reference, tmp_path)
    assert table.count("\n") == 2 + 2  # header, rule, task row, "all" row
    assert (tmp_path / "summary.csv").read_text().startswith("method,task,episodes")
    assert (tmp_path / "optical_flow_dts.gif").stat().st_size > 0
    logged, logged_reference = load_log(tmp_path / "episodes.jsonl")
    assert logged_reference == reference
    assert [(e.success, e.steps, e.plans) for e in logged["optical_flow/dts"]] == [
        (episode.success, episode.steps, episode.plans)]


def test_baselines_need_no_video_model(tmp_path):
    results, reference = evaluate(_args(predictor="random", max_steps=10), None)
    (episode,) = results["random"]
    assert episode.steps == 10 and episode.actions_in_space and not episode.plans
    assert not reference["all"]
    summary = report(results, reference, tmp_path)
    assert "| random | all | 1 |" in summary
