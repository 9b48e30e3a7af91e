"""Block speculative planning: block chaining, routing by worst frame, forced first block."""

import math

import pytest
import torch

from dts_planner.diffusion import DDIMSampler, NoiseSchedule, parse_spec
from dts_planner.models import model_space_to_uint8, TINY_CONFIG
from dts_planner.peers import (BlockSpeculativeSampler, DenoisingConsistencyScorer,
                               last_frame)
from gaussian_denoiser import GaussianDataDenoiser

FRAME_CH = 3 * TINY_CONFIG.num_frames


@pytest.fixture
def problem(tiny_problem):
    """Return the tiny video problem as (model, block-0 noise, cond, text tokens), 2 samples."""
    return tiny_problem.model, tiny_problem.noise, tiny_problem.cond, tiny_problem.task


class SampleWiseScorer:
    """Scores sample 0's frames 10 dB and sample 1's frames [40, 5] dB (worst 5)."""

    def __call__(self, block, cond, generator=None):
        """Return constructed per-frame scores (B, F)."""
        return torch.tensor([[10.0, 10.0], [40.0, 5.0]])


def sample(sampler, problem, seed=7):
    """Run ``sampler`` on the problem with a seeded generator."""
    model, noise, cond, _ = problem
    return sampler.sample(model, noise, cond, torch.Generator().manual_seed(seed))


def test_all_accepted_blocks_are_drafts_chained_on_the_last_frame(problem):
    model, _, _, task = problem
    draft, target = DDIMSampler(2), DDIMSampler(5)
    result = sample(BlockSpeculativeSampler(draft, target, -math.inf, num_blocks=3), problem)
    plan = result.sample
    assert plan.shape == (2, 3 * FRAME_CH, 8, 8)
    reference = sample(BlockSpeculativeSampler(None, target, math.inf, num_blocks=3), problem)
    torch.testing.assert_close(plan[:, :FRAME_CH], reference.sample[:, :FRAME_CH])  # block 0
    generator = torch.Generator().manual_seed(7)
    block1_noise = torch.randn(model.noise_shape(2), generator=generator)
    block1_cond = model.make_cond(last_frame(plan[:, :FRAME_CH]), task)
    block1 = draft.sample(model, block1_noise, block1_cond).sample
    torch.testing.assert_close(plan[:, FRAME_CH:2 * FRAME_CH], block1)
    assert result.stats.accepted_per_round == [[0, 0], [1, 1], [1, 1]]
    assert result.stats.router_scores[0] == [[], []]
    assert len(result.stats.router_scores[1][0]) == 2 and result.stats.router_tau == -math.inf
    assert result.stats.rounds == 3 and result.stats.wall_time > 0


def test_rejecting_everything_gives_the_target_only_plan(problem):
    target = DDIMSampler(5)
    rejected = sample(BlockSpeculativeSampler(DDIMSampler(2), target, math.inf, 3), problem)
    target_only = sample(BlockSpeculativeSampler(None, target, math.inf, 3), problem)
    torch.testing.assert_close(rejected.sample, target_only.sample)
    assert rejected.stats.nfe > target_only.stats.nfe
    assert rejected.stats.accepted_per_round == [[0, 0]] * 3


def test_worst_frame_routes_each_sample_of_a_batch(problem):
    draft, target = DDIMSampler(2), DDIMSampler(5)
    mixed = sample(BlockSpeculativeSampler(draft, target, 8.0, 2, scorer=SampleWiseScorer()),
                   problem)
    drafts = sample(BlockSpeculativeSampler(draft, target, -math.inf, 2), problem)
    targets = sample(BlockSpeculativeSampler(None, target, math.inf, 2), problem)
    assert mixed.stats.accepted_per_round == [[0, 0], [1, 0]]   # sample 1: worst 5 < 8
    torch.testing.assert_close(mixed.sample[0], drafts.sample[0])
    torch.testing.assert_close(mixed.sample[1], targets.sample[1])


def test_default_scorer_marks_the_frame_off_the_data_distribution():
    # exact denoiser of data N(0, 0.5^2): frame 0 is a typical sample, frame 1 an outlier
    denoiser = GaussianDataDenoiser(NoiseSchedule.avdc(), 0.5)
    block = 0.5 * torch.randn(1, 6, 16, 16, generator=torch.Generator().manual_seed(0))
    block[:, 3:] = 2.0 * block[:, 3:] + 1.5
    scores = DenoisingConsistencyScorer(denoiser, probe_t=30)(
        block, None, torch.Generator().manual_seed(1))
    assert scores.shape == (1, 2) and scores[0, 0] > scores[0, 1] + 3.0
    with pytest.raises(ValueError, match="probe_t"):
        DenoisingConsistencyScorer(denoiser, probe_t=100)


@pytest.mark.parametrize("tau, blocks_by_target", [(1e3, 2), (-1e3, 1)])
def test_registry_settings_reach_the_drafter_and_the_target(problem, tau, blocks_by_target):
    sampler = parse_spec(f"block_speculative:tau={tau},num_blocks=2,draft_steps=2,target=ddim,"
                         "ddim.num_steps=3").build()
    result = sample(sampler, problem)
    frames = model_space_to_uint8(result.sample)
    assert frames.shape == (2, 2 * TINY_CONFIG.num_frames, 8, 8, 3)
    stats = result.stats
    parts = [(part.sampler, part.depth) for part in stats.parts]
    drafted = [("ddim2", 2)] if blocks_by_target == 1 else [("ddim2", 2), ("ddim3", 3)]
    assert parts == [("ddim3", 3)] + drafted                 # block 0: target; block 1: draft
    assert stats.target_calls == 3 * blocks_by_target and stats.draft_calls == 2
    assert stats.depth == 3 * blocks_by_target + 2 + 1        # + the router's probe call
    assert stats.router_tau == tau and stats.accepted_per_round[1] == [2 - blocks_by_target] * 2
    with pytest.raises(ValueError, match="'image'"):
        sampler.sample(problem[0], problem[1], None)
