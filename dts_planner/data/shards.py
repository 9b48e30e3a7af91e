"""Episode shards: compressed ``.npz`` files holding several demonstration episodes.

The frames of all episodes in a shard are concatenated along the first axis; episode ``e``
owns frames ``starts[e]:starts[e + 1]`` (reset frame first, then one frame per step). Per frame
(N rows): ``rgb`` (N, H, W, 3) uint8, ``depth`` (N, H, W) float16 metres, ``segmentation``
(N, H, W) int16 geom ids (-1 background), ``object_mask`` (N, H, W) bool, ``state`` (N, 39)
float32, ``hand_pos`` (N, 3) float32, ``action`` (N, 4) float32 taken at that frame (zeros on an
episode's last frame). Per episode (E rows): ``starts`` (E + 1,) int64, ``task``, ``camera``,
``instruction`` (E,) str, ``seed`` (E,) int64, ``success`` (E,) bool, ``intrinsics`` (E, 3, 3)
and ``cam_to_world`` (E, 4, 4) float64 (OpenCV convention, fixed cameras). Strings are stored as
unicode arrays, so ``np.load`` needs no pickle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import os
from pathlib import Path
from typing import Iterable, Sequence, TYPE_CHECKING

import numpy as np

from dts_planner.sim.task_names import task_key

if TYPE_CHECKING:   # the format itself needs no simulator
    from dts_planner.sim.metaworld_env import Observation

#: Per-frame arrays and the dtype each is stored with.
FRAME_FIELDS: dict[str, np.dtype] = {
    "rgb": np.dtype(np.uint8), "depth": np.dtype(np.float16),
    "segmentation": np.dtype(np.int16), "object_mask": np.dtype(bool),
    "state": np.dtype(np.float32), "hand_pos": np.dtype(np.float32),
    "action": np.dtype(np.float32),
}


@dataclass
class Episode:
    """One recorded demonstration: T + 1 observations and T actions."""

    task: str
    camera: str
    instruction: str
    seed: int
    success: bool
    observations: list[Observation] = field(default_factory=list)
    actions: list[np.ndarray] = field(default_factory=list)

    def frames(self, name: str) -> np.ndarray:
        """Per-frame array ``name`` (T + 1, ...) in its storage dtype."""
        if name == "action":
            padded = self.actions + [np.zeros(4, np.float32)]
            return np.stack(padded).astype(FRAME_FIELDS[name])
        return np.stack([getattr(obs, name) for obs in self.observations]).astype(
            FRAME_FIELDS[name])


def write_shard(path: str | os.PathLike, episodes: Sequence[Episode]) -> Path:
    """Write episodes to one compressed shard (atomically) and return its path."""
    lengths = [len(ep.observations) for ep in episodes]
    arrays = {name: np.concatenate([ep.frames(name) for ep in episodes])
              for name in FRAME_FIELDS}
    arrays.update(
        starts=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        task=np.array([ep.task for ep in episodes]),
        camera=np.array([ep.camera for ep in episodes]),
        instruction=np.array([ep.instruction for ep in episodes]),
        seed=np.array([ep.seed for ep in episodes], np.int64),
        success=np.array([ep.success for ep in episodes]),
        intrinsics=np.stack([ep.observations[0].intrinsics for ep in episodes]),
        cam_to_world=np.stack([ep.observations[0].cam_to_world for ep in episodes]))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial.npz")
    np.savez_compressed(partial, **arrays)
    os.replace(partial, path)
    return path


def shard_paths(source: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    """Return sorted shard files of a directory (recursive), one file or a list of files."""
    if isinstance(source, (str, os.PathLike)):
        source = Path(source)
        paths = sorted(source.rglob("*.npz")) if source.is_dir() else [source]
    else:
        paths = sorted(Path(p) for p in source)
    paths = [p for p in paths if not p.name.endswith(".partial.npz")]
    if not paths:
        raise FileNotFoundError(f"no episode shards (*.npz) in {source}")
    return paths


@dataclass
class EpisodeTable:
    """Selected per-frame arrays of many shards, concatenated, plus the episode index."""

    frames: dict[str, np.ndarray]   # name -> (N, ...) arrays
    starts: np.ndarray              # (E,) first frame of each episode
    lengths: np.ndarray             # (E,) frames per episode (T + 1)
    instruction: np.ndarray         # (E,) str
    task: np.ndarray                # (E,) str
    camera: np.ndarray              # (E,) str
    seed: np.ndarray                # (E,) int64

    def __len__(self) -> int:
        """Return the number of episodes."""
        return len(self.starts)


def load_episodes(source: str | os.PathLike | Iterable[str | os.PathLike],
                  fields: Sequence[str] = ("rgb",), successful_only: bool = True,
                  tasks: Sequence[str] | None = None) -> EpisodeTable:
    """Read ``fields`` of all (successful) episodes of the given shards into memory."""
    unknown = set(fields) - set(FRAME_FIELDS)
    if unknown:
        raise ValueError(f"unknown frame fields {sorted(unknown)}; known: {list(FRAME_FIELDS)}")
    frames: dict[str, list[np.ndarray]] = {name: [] for name in fields}
    meta: dict[str, list[np.ndarray]] = {k: [] for k in ("instruction", "task", "camera", "seed")}
    starts, lengths, offset = [], [], 0
    for path in shard_paths(source):
        with np.load(path) as shard:
            bounds = shard["starts"]
            keep = shard["success"] if successful_only else np.ones(len(bounds) - 1, bool)
            if tasks is not None:
                keep = keep & np.isin(shard["task"], [task_key(t) for t in tasks])
            rows = np.concatenate([np.arange(bounds[e], bounds[e + 1])
                                   for e in np.flatnonzero(keep)] or [np.zeros(0, int)])
            for name in fields:
                frames[name].append(shard[name][rows])
            for key in meta:
                meta[key].append(shard[key][keep])
            length = np.diff(bounds)[keep]
            starts.append(offset + np.cumsum(length) - length)
            lengths.append(length)
            offset += len(rows)
    table = EpisodeTable(frames={name: np.concatenate(parts) for name, parts in frames.items()},
                         starts=np.concatenate(starts).astype(np.int64),
                         lengths=np.concatenate(lengths).astype(np.int64),
                         **{key: np.concatenate(parts) for key, parts in meta.items()})
    if not len(table):
        raise ValueError(f"no matching episodes in {source}")
    return table
