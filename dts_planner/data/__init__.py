"""Meta-World demonstrations: generator, episode shards and datasets.

Generate: ``python -m dts_planner.data.generate_metaworld --out data/metaworld11 --seeds 0:20``
(scripted experts; tasks `sim.DEFAULT_TASKS`, AVDC's 11; cameras corner, corner2, corner3;
64x64; seeds >= 1000 are kept for held-out evaluation).

Shard format (``*.npz``, see ``dts_planner.data.shards``): frames of all episodes concatenated,
episode ``e`` = rows ``starts[e]:starts[e + 1]``; per frame ``rgb`` uint8 (N, H, W, 3),
``depth`` float16 metres, ``segmentation`` int16 geom ids, ``object_mask`` bool, ``state``
(N, 39), ``hand_pos`` (N, 3), ``action`` (N, 4) taken at that frame (zeros on the last frame);
per episode ``task``, ``camera``, ``instruction``, ``seed``, ``success``, ``intrinsics`` (3, 3),
``cam_to_world`` (4, 4) (OpenCV convention, as ``dts_planner.sim.Observation``).

Datasets: ``VideoClipDataset`` (AVDC clips: 8 frames from a random start to the episode end)
and ``ActionChunkDataset`` (GCP's hindsight samples: observation, a goal frame k steps later,
the 16 actions from the observation on); ``StepBatchSampler`` draws each training step's batch
from (seed, step) alone, so resumed runs repeat uninterrupted ones exactly.
"""

from dts_planner.data.datasets import (ActionChunkDataset, balanced_weights, chunks_to_tensors,
                                       clip_frame_indices, StepBatchSampler, VideoClipDataset)
from dts_planner.data.shards import (Episode, EpisodeTable, FRAME_FIELDS, load_episodes,
                                     shard_paths, write_shard)

__all__ = ["ActionChunkDataset", "balanced_weights", "chunks_to_tensors", "clip_frame_indices",
           "Episode", "EpisodeTable", "FRAME_FIELDS", "load_episodes", "shard_paths",
           "StepBatchSampler", "VideoClipDataset", "write_shard"]
