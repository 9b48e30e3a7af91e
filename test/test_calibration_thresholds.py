"""DTS thresholds for a target acceptance (dts_planner.calibration.thresholds)."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest
import torch

from conftest import make_tiny_problem
from dts_planner.calibration import fit_thresholds, GROWTHS, rank_thresholds, replay, step_table
from dts_planner.calibration.thresholds import replay_many
from dts_planner.diffusion import DTSSampler, DTSSettings, SamplerStats

# 5 draft steps: big first and last steps, small middle ones (the shape seen on the 48x48 model)
PROFILE = [0.015, 0.006, 0.002, 0.002, 0.024]
TABLE = step_table(PROFILE)


def test_replay_follows_dts_accept_reject_rule_by_hand():
    # threshold 0.01, no growth, chunk 3: round 0 rejects step 0 (advance 1, 0 of 3 accepted);
    # round 1 accepts steps 1-3 (3 of 3, continue from the target of step 3: the errors of
    # steps 1 and 2 stay); round 2 drafts step 4 alone and rejects it (0 of 1)
    out = replay([TABLE], chunk=3, threshold=0.01, increment=0.0)
    assert (out.accepted, out.drafted, out.rounds) == (3, 7, 3)
    assert out.retained_sq == pytest.approx(0.006 ** 2 + 0.002 ** 2)
    # growth: round 2's threshold 0.01 + 2 * 0.008 = 0.026 accepts step 4
    grown = replay([TABLE], chunk=3, threshold=0.01, increment=0.008)
    assert (grown.accepted, grown.drafted, grown.rounds) == (4, 7, 3)
    # a round that accepts some tokens moves past the first rejected one (its target)
    mixed = replay([step_table([0.001, 0.02, 0.001, 0.001, 0.001])], 3, 0.01, 0.0)
    assert (mixed.accepted, mixed.drafted, mixed.rounds) == (4, 6, 2)
    assert replay([TABLE], 3, 1.0, 0.0).acceptance == 1.0
    assert replay([TABLE], 3, 0.0, 0.0).accepted == 0
    with pytest.raises(ValueError):
        replay([TABLE], 0, 1.0, 0.0)


def plain_replay(tables, chunk: int, threshold: float, increment: float,
                 progression: str) -> tuple[int, int, int, float]:
    """Replay the rule of the module docstring in a plain loop, token by token (reference)."""
    accepted = drafted = rounds = 0
    retained = 0.0
    for table in tables:
        step = round_index = 0
        while step < len(table):
            growth = round_index if progression == "linear" else round_index * (
                round_index + 1) / 2
            limit = threshold + increment * growth
            row = table[step]
            length = min(chunk, len(row))
            count = 0
            while count < length and row[count] <= limit:
                count += 1
            retained += sum(d * d for d in row[:min(count, length - 1)])   # a round's sum
            accepted, drafted = accepted + count, drafted + length
            step += min(count + 1, length)
            round_index += 1
        rounds += round_index
    return accepted, drafted, rounds, retained


def test_replaying_many_thresholds_at_once_gives_the_plain_loops_outcomes_bit_for_bit():
    rng = random.Random(3)
    for _ in range(12):
        steps = rng.randint(1, 12)
        tables = [[[rng.choice([0.0, abs(rng.gauss(0.01, 0.01))]) for _ in range(steps - s)]
                   for s in range(steps)] for _ in range(rng.randint(1, 5))]
        thresholds = [rng.uniform(0.0, 0.03) for _ in range(40)]
        increments = [rng.choice([0.0, 0.1, 0.5]) * lam for lam in thresholds]
        for chunk in (1, 3, 6, 20):
            for progression in ("linear", "cumulative"):
                outcomes = replay_many(tables, chunk, thresholds, increments, progression)
                assert [(o.accepted, o.drafted, o.rounds, o.retained_sq) for o in outcomes] == [
                    plain_replay(tables, chunk, lam, inc, progression)
                    for lam, inc in zip(thresholds, increments)]


def test_fit_hits_reachable_targets_and_puts_rejections_on_the_largest_errors():
    profiles = [step_table([0.01 + 0.001 * ((7 * i + 3 * j) % 11) for j in range(10)])
                for i in range(6)]
    for target in (0.9, 0.7, 0.5):
        fit = fit_thresholds(profiles, 4, target)
        assert abs(fit.acceptance - target) <= 0.05, fit
        out = replay(profiles, 4, fit.threshold, fit.increment)
        assert out.acceptance == fit.acceptance
    # among all thresholds (a brute-force grid) with the fitted acceptance, none leaves less
    # draft error in the plans: the rejections fall on the largest distances
    # (the second case: a fit with fewer rounds would keep more error)
    uneven = [step_table([0.0253, 0.0162, 0.0161, 0.0078, 0.0072, 0.0207]),
              step_table([0.0249, 0.0132, 0.009, 0.0153, 0.0196, 0.0213])]
    for tables, target in ((profiles, 0.8), (profiles, 0.6), (uneven, 0.5)):
        fit = fit_thresholds(tables, 3, target)
        lams = [0.005 * 1.01 ** i for i in range(200)]
        grid = [out for growth in GROWTHS
                for out in replay_many(tables, 3, lams, [growth * lam for lam in lams])]
        same = [out.retained_sq for out in grid if out.acceptance == fit.acceptance]
        assert same and fit.retained ** 2 * len(tables) <= min(same) + 1e-15
    assert fit_thresholds([TABLE], 5, 0.0).acceptance == 0.0
    assert fit_thresholds([TABLE], 3, 1.0).threshold > max(PROFILE)
    for bad in ([], [[]], [step_table([0.1, float("nan")])], [[[-1.0]]], [[[0.1], [0.1]]]):
        with pytest.raises(ValueError):
            fit_thresholds(bad, 3, 0.5)
    with pytest.raises(ValueError):
        fit_thresholds([TABLE], 3, 1.5)


@pytest.mark.parametrize("chunk, target_stride, target", [(3, 5, 0.7), (4, 5, 0.5)])
def test_fitted_thresholds_give_the_target_acceptance_on_the_calibration_plans(
        chunk, target_stride, target):
    problem = make_tiny_problem(seed=5, batch=4)
    steps = problem.model.schedule.num_train_timesteps // 10
    probe = DTSSampler(target_stride=target_stride, chunk=steps, distance="rms", threshold=0.0,
                       increment=0.0)
    with torch.inference_mode():
        distances = probe.sample(problem.model, problem.noise, problem.cond).stats.distances
    # round r of the probe starts at draft step r and drafts to the end: row r of each table
    tables = [[distances[r][b] for r in range(steps)] for b in range(4)]
    assert [len(row) for row in tables[0]] == list(range(steps, 0, -1))
    ranked = rank_thresholds(tables, chunk, target, limit=3)
    fit = ranked[0]
    assert fit == fit_thresholds(tables, chunk, target)
    settings = DTSSettings(target_stride=target_stride, chunk=chunk, distance="rms",
                           threshold=fit.threshold, increment=fit.increment)
    with torch.inference_mode():
        stats = settings.build().sample(problem.model, problem.noise, problem.cond).stats
    assert abs(stats.acceptance_rate - target) <= 0.1
    assert abs(stats.acceptance_rate - fit.acceptance) <= 0.05
    assert len({(f.acceptance, f.retained) for f in ranked}) == 3


def test_the_acceptance_rate_of_stats_is_accepted_over_drafted(tiny_problem):
    with torch.inference_mode():
        stats = DTSSampler(chunk=4, distance="rms", threshold=1e9, increment=0.0).sample(
            tiny_problem.model, tiny_problem.noise, tiny_problem.cond).stats
    assert stats.acceptance_rate == 1.0
    stats.rejected_per_round[0] = [1, 3]
    assert stats.acceptance_rate == pytest.approx(20 / 24)     # chunks of 4, 4, 2 tokens x 2
    assert SamplerStats("ddim10").acceptance_rate is None


def test_the_calibration_package_imports_no_torch():
    code = ("import sys, dts_planner.calibration; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
