"""Quality router: worst-frame aggregation, threshold, forced first block (constructed scores)."""

import math

import torch

from dts_planner.peers import frame_psnr, QualityRouter, worst_frame


class ConstantScorer:
    """Returns fixed per-frame scores, whatever the block."""

    def __init__(self, scores: torch.Tensor):
        """Score every block with ``scores`` (B, F)."""
        self.scores = scores

    def __call__(self, block, cond, generator=None):
        """Return the fixed scores."""
        return self.scores


def test_worst_frame_is_the_minimum_over_frames():
    scores = torch.tensor([[30.0, 28.0, 35.0], [40.0, 41.0, 39.5]])
    assert worst_frame(scores).tolist() == [28.0, 39.5]


def test_one_bad_frame_rejects_a_block_whose_mean_passes():
    scores = torch.tensor([[40.0, 40.0, 40.0, 10.0],     # mean 32.5 >= tau, worst 10 < tau
                           [31.0, 30.0, 32.0, 33.0],     # worst exactly tau -> accepted
                           [29.9, 50.0, 50.0, 50.0]])
    decision = QualityRouter(ConstantScorer(scores), tau=30.0).decide(scores, block_index=1)
    assert decision.accept.tolist() == [False, True, False]
    assert decision.block_score.tolist() == [10.0, 30.0, 29.899999618530273]
    assert not decision.forced


def test_first_block_is_always_forced_to_the_target():
    scores = torch.full((2, 4), 99.0)
    router = QualityRouter(ConstantScorer(scores), tau=-math.inf)
    decision = router.decide(scores, block_index=0)
    assert decision.forced and decision.accept.tolist() == [False, False]
    assert decision.frame_scores.shape == (2, 0)
    assert router.is_forced(0) and not router.is_forced(1)
    assert router.decide(scores, block_index=2).accept.all()


def test_route_scores_with_the_scorer_then_decides():
    scores = torch.tensor([[25.0, 26.0], [27.0, 35.0]])
    decision = QualityRouter(ConstantScorer(scores), tau=26.5).route(
        torch.zeros(2, 6, 4, 4), None, block_index=3)
    assert decision.accept.tolist() == [False, True]
    assert torch.equal(decision.frame_scores, scores)


def test_frame_psnr_per_frame_in_db():
    a = torch.zeros(1, 6, 4, 4)
    b = a.clone()
    b[:, 3:] = 0.2                                                   # second frame off by 0.2
    psnr = frame_psnr(a, b)
    assert psnr.shape == (1, 2)
    assert math.isinf(psnr[0, 0].item())
    assert abs(psnr[0, 1].item() - 10 * math.log10(4 / 0.04)) < 1e-4
