"""Peer samplers beside DTS: ParaDiGMS, SRDS and SDVG-style block speculative planning.

Importing this package registers their settings with the sampler registry as "paradigms",
"srds" and "block_speculative" (``dts_planner.diffusion.parse_spec``, ``make_sampler``, ...).
"""

from dts_planner.diffusion import register_sampler
from dts_planner.peers.block_speculative import (BlockSpeculativeSampler,
                                                 BlockSpeculativeSettings, last_frame,
                                                 with_first_frame)
from dts_planner.peers.paradigms import (make_parallel_scheduler, ParadigmsSampler,
                                         ParadigmsSettings)
from dts_planner.peers.quality_router import (DenoisingConsistencyScorer, frame_psnr,
                                              FrameScorer, QualityRouter, RouteDecision,
                                              worst_frame)
from dts_planner.peers.srds import SRDSSampler, SRDSSettings

for _settings in (ParadigmsSettings, SRDSSettings, BlockSpeculativeSettings):
    register_sampler(_settings)

__all__ = [
    "BlockSpeculativeSampler", "BlockSpeculativeSettings", "DenoisingConsistencyScorer",
    "FrameScorer", "ParadigmsSampler", "ParadigmsSettings", "QualityRouter", "RouteDecision",
    "SRDSSampler", "SRDSSettings", "frame_psnr", "last_frame", "make_parallel_scheduler",
    "with_first_frame", "worst_frame",
]
