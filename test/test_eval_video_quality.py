"""Video-quality evaluation pieces on synthetic frames (no simulator)."""

import math

import numpy as np

from dts_planner.eval.video_quality import (ExpertCase, markdown_report, plan_grid, psnr,
                                            score_case, seed_range)


def expert_case():
    """Ten 8x8 frames: a white square appears in the last one."""
    frames = np.zeros((10, 8, 8, 3), np.uint8)
    frames[-1, 2:4, 2:4] = 255
    return ExpertCase("reach", "corner", 1000, "reach the goal", frames)


def test_plan_scores_against_the_true_last_frame_on_all_and_changed_pixels():
    case = expert_case()
    scores = score_case(case, case.frames[-1])
    assert scores["changed_fraction"] == 4 / 64
    assert scores["plan_psnr"] == scores["plan_psnr_changed"] == 10 * math.log10(255 ** 2 / 1e-10)
    assert scores["current_psnr_changed"] == 0.0                  # every changed pixel is off
    assert abs(scores["current_psnr"] - 10 * math.log10(16)) < 1e-9   # mse = 255^2 / 16
    assert psnr(case.frames[0], case.frames[-1], np.zeros((8, 8), bool)) == scores["plan_psnr"]
    assert seed_range("1000:1002") == range(1000, 1002)


def test_grid_has_a_row_per_plan_and_the_report_a_row_per_task():
    case = expert_case()
    plans = {"DDPM-100": case.frames[1:8], "DTS": case.frames[2:9]}
    grid = plan_grid(case, plans, scale=2)
    assert grid.size == (72 + 8 * 8 * 2, 3 * 8 * 2)
    rows = [{"task": "reach", "sampler": name, "nfe": 10, "seconds": 1.0,
             **score_case(case, frames[-1])} for name, frames in plans.items()]
    report = markdown_report(rows)
    assert "| reach | 1 |" in report and "| **all** | 1 |" in report
