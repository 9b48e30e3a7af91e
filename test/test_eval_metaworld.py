"""Closed-loop Meta-World evaluation: parsers, smoke run, resuming, and both drivers.

The same episodes are driven directly and through the ROS graph (one policy, two drivers).
"""

from __future__ import annotations

import argparse

import pytest
import torch

from dts_planner.common.seeds import parse_seeds
from dts_planner.diffusion import DDPMSettings, DDIMSettings
from dts_planner.eval.metaworld import (
    EpisodeLog, evaluate, load_log, parse_args, parse_method, plan_jobs, report)
from dts_planner.models import random_video_model, UNetConfig, VideoModelConfig
from dts_planner.models.text_encoders import shared_text_encoder
from dts_planner.planning import VideoPlanner
from dts_planner.planning.factory import build_planner
from dts_planner.predictors import DEFAULT_KIND

TINY_VIDEO = VideoModelConfig(
    image_size=(16, 16), num_frames=3,
    unet=UNetConfig(model_channels=32, num_res_blocks=1, channel_mult=(1, 1),
                    attention_resolutions=(), dims=2, task_token_channels=384),
    text_encoder="minilm")


@pytest.fixture(scope="module")
def planner() -> VideoPlanner:
    """Return a tiny random-weight (nonzero) planner."""
    return VideoPlanner(random_video_model(TINY_VIDEO, seed=0),
                        shared_text_encoder("minilm", "cpu"), DDPMSettings().build())


def _args(*argv: str) -> argparse.Namespace:
    return parse_args(["--tasks", "button-press", "--cameras", "corner", "--seeds", "1000",
                       "--resolution", "32", "--sampler", "dts", "--max-steps", "8",
                       "--max-plans", "2", *argv])


def test_parsers() -> None:
    assert parse_method("ddim:num_steps=10") == DDIMSettings(num_steps=10)
    assert parse_method("oracle") == "oracle"
    with pytest.raises(argparse.ArgumentTypeError, match="num_steps"):
        parse_method("ddim:num_steps=0")
    assert parse_seeds("1000:1003") == [1000, 1001, 1002] and parse_seeds("4,7") == [4, 7]
    assert parse_seeds("5") == [5] and parse_seeds(":3") == [0, 1, 2]
    with pytest.raises(ValueError, match="no seeds"):
        parse_seeds("3:3")
    assert len(parse_args([]).tasks) == 11 and parse_args([]).cameras == [
        "corner", "corner2", "corner3"]
    jobs = plan_jobs(parse_args(["--tasks", "reach", "--cameras", "corner", "--seeds", "3",
                                 "--sampler", "ddpm", "--budgets", "0.4"]))
    assert [job[3] for job in jobs] == [f"{DEFAULT_KIND}/ddpm", f"{DEFAULT_KIND}/budget-0.4s"]


@pytest.mark.long_running
def test_closed_loop_smoke_and_resume(planner, tmp_path) -> None:
    log = tmp_path / "episodes.jsonl"
    results, reference = evaluate(_args(), planner, log=EpisodeLog(log))
    (episode,) = results[f"{DEFAULT_KIND}/dts"]
    assert episode.actions_in_space and episode.camera == "corner"
    assert 1 <= episode.steps <= 8
    assert 1 <= len(episode.plans) <= 2
    assert all(p.nfe >= p.depth >= 1 and p.time_s > 0 for p in episode.plans)
    assert len(episode.frames) == episode.steps
    assert len(reference["button-press-v3"]) == 1  # one timing-only DDPM-100 plan
    assert reference["all"] == reference["button-press-v3"]
    table = report(results, reference, tmp_path)
    assert table.count("\n") == 2 + 2  # header, rule, task row, "all" row
    assert (tmp_path / "summary.csv").read_text().startswith("method,task,episodes")
    assert (tmp_path / f"{DEFAULT_KIND}_dts.gif").stat().st_size > 0
    logged, logged_reference = load_log(log)
    assert logged_reference == reference
    assert [(e.success, e.steps, e.plans) for e in logged[f"{DEFAULT_KIND}/dts"]] == [
        (episode.success, episode.steps, episode.plans)]
    again, _ = evaluate(_args("--seeds", "1000,1001", "--no-reference"), planner,
                        log=EpisodeLog(log))                      # resumes: runs seed 1001
    assert [e.seed for e in again[f"{DEFAULT_KIND}/dts"]] == [1000, 1001]
    assert len(log.read_text().splitlines()) == 2


def test_baselines_need_no_video_model(tmp_path) -> None:
    results, reference = evaluate(_args("--predictor", "random", "--max-steps", "10"), None)
    (episode,) = results["random"]
    assert episode.steps == 10 and episode.actions_in_space and not episode.plans
    assert not reference["all"]
    assert "| random | all | 1 |" in report(results, reference, tmp_path)


@pytest.mark.long_running
def test_the_ros_graph_repeats_the_evaluation(ros_domain_id) -> None:
    """The same episode, driven directly and through the nodes: same success, steps, plans."""
    from dts_planner.ros.policy_graph import evaluate_via_ros
    args = parse_args(["--tasks", "handle-press", "--cameras", "corner", "--seeds", "1",
                       "--sampler", "ddim:num_steps=2", "--max-steps", "150", "--no-gif",
                       "--no-reference"])
    planner = build_planner("", "", 0, "default", DDPMSettings().build(),
                            torch.device("cpu"))[0]
    direct, _ = evaluate(args, planner)
    # the paused bridge re-publishes its state every 20 ms: a re-published frame is the same
    # state (not acted on twice), so the episode stays the evaluation's step for step
    via_ros, _ = evaluate_via_ros(args, EpisodeLog(None),
                                  bridge={"sim.republish_period_s": 0.02})

    def outcome(results: dict) -> list:
        return [(e.seed, e.success, e.steps, len(e.plans), [p.nfe for p in e.plans])
                for e in results[f"{DEFAULT_KIND}/ddim:num_steps=2"]]
    assert outcome(direct) == outcome(via_ros)
    (_, success, _, plans, _), = outcome(direct)
    assert success and plans >= 2, "the shipped model solves handle-press 1, replanning on the way"


def test_paper_table_wilson_intervals_and_paired_test() -> None:
    from dts_planner.eval.closed_loop import EpisodeResult
    from dts_planner.eval.policy_report import paired_comparison, paper_table, wilson_interval
    low, high = wilson_interval(42, 100)
    assert (round(low, 3), round(high, 3)) == (0.328, 0.518)   # the textbook interval
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0

    def episodes(successes: list[bool]) -> list[EpisodeResult]:
        return [EpisodeResult("reach-v3", seed, ok, 10, camera="corner")
                for seed, ok in enumerate(successes)]
    reference = episodes([True] * 6 + [False] * 4)
    method = episodes([True] * 4 + [False] * 2 + [True] * 2 + [False] * 2)
    paired = paired_comparison(method, reference)
    assert (paired.pairs, paired.only_method, paired.only_reference) == (10, 2, 2)
    assert paired.p_value == 1.0
    table = paper_table({"flow/ddpm": reference, "flow/dts": method}, {}, "flow/ddpm")
    assert "| flow/ddpm | 60 | 60.0 |" in table and "(reference)" in table
    assert "| flow/dts | 10 | 60.0 % [31.3, 83.2] |" in table and "2 / 2, p = 1.000" in table
