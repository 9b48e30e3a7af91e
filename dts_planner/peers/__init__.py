"""Peer samplers beside DTS: ParaDiGMS, SRDS and SDVG-style block speculative planning.

Importing this package registers them with ``make_sampler`` as "paradigms", "srds" and
"block_speculative" (the sampler core imports it on the first unknown name).
"""

from dts_planner.diffusion import register_sampler
from dts_planner.peers.block_speculative import (BlockSpeculativeSampler, last_frame,
                                                 make_block_speculative_sampler,
                                                 with_first_frame)
from dts_planner.peers.paradigms import make_parallel_scheduler, ParadigmsSampler
from dts_planner.peers.quality_router import (DenoisingConsistencyScorer, frame_psnr,
                                              FrameScorer, QualityRouter, RouteDecision,
                                              worst_frame)
from dts_planner.peers.srds import SRDSSampler

register_sampler("paradigms", ParadigmsSampler)
register_sampler("srds", SRDSSampler)
register_sampler("block_speculative", make_block_speculative_sampler)

__all__ = [
    "BlockSpeculativeSampler", "DenoisingConsistencyScorer", "FrameScorer", "ParadigmsSampler",
    "QualityRouter", "RouteDecision", "SRDSSampler", "frame_psnr", "last_frame",
    "make_block_speculative_sampler", "make_parallel_scheduler", "with_first_frame",
    "worst_frame",
]
