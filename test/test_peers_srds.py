"""SRDS (parareal DDIM): converges to the sequential fine solution, coarse-only is DDIM-B."""

import pytest
import torch

from dts_planner.diffusion import DDIMSampler, make_sampler
from dts_planner.peers import SRDSSampler


@pytest.fixture
def problem(tiny_problem):
    """Return the tiny video problem as (model, noise, cond), 2 samples."""
    return tiny_problem.model, tiny_problem.noise, tiny_problem.cond


@pytest.mark.parametrize("num_steps", [16, 20])                 # 4x4 and uneven 4+4+4+4+4
def test_enough_iterations_equal_the_sequential_fine_solution(problem, num_steps):
    model, noise, cond = problem
    sequential = DDIMSampler(num_steps).sample(model, noise, cond).sample
    result = SRDSSampler(num_steps, tolerance=0.0).sample(model, noise, cond)
    torch.testing.assert_close(result.sample, sequential, atol=1e-4, rtol=1e-4)
    assert result.stats.rounds == 4 if num_steps == 16 else 5


def test_error_shrinks_with_iterations_and_coarse_only_is_ddim_b(problem):
    model, noise, cond = problem
    sequential = DDIMSampler(16).sample(model, noise, cond).sample
    coarse = SRDSSampler(16, max_iterations=0).sample(model, noise, cond)
    torch.testing.assert_close(coarse.sample, DDIMSampler(4).sample(model, noise, cond).sample)
    assert coarse.stats.depth == 4
    errors = [(SRDSSampler(16, max_iterations=it, tolerance=0.0).sample(model, noise, cond)
               .sample - sequential).abs().max().item() for it in (1, 2, 3)]
    assert errors[0] > errors[1] > errors[2]


def test_depth_and_nfe_arithmetic(problem):
    model, noise, cond = problem
    stats = SRDSSampler(16, max_iterations=1, tolerance=0.0).sample(model, noise, cond).stats
    # 4 coarse init calls, 4 batched fine steps over 4 segments, 3 coarse sweep calls
    assert stats.batch_sizes == [2] * 4 + [8] * 4 + [2] * 3
    assert stats.depth == 11 and stats.nfe == 8 + 32 + 6


def test_early_stop_on_tolerance(problem):
    model, noise, cond = problem
    result = SRDSSampler(16, tolerance=1e3).sample(model, noise, cond)
    assert result.stats.rounds == 1


def test_settings_are_validated_and_registered():
    with pytest.raises(ValueError, match="num_segments"):
        SRDSSampler(10, num_segments=11)
    with pytest.raises(ValueError, match="tolerance"):
        SRDSSampler(10, tolerance=-1)
    sampler = make_sampler("srds", num_steps=25, max_iterations=2)
    assert isinstance(sampler, SRDSSampler) and sampler.num_segments == 5
