"""Torch datasets over episode shards: AVDC video clips and action-chunk samples, samplers."""

from __future__ import annotations

import os
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info, Sampler

from dts_planner.data.shards import EpisodeTable, load_episodes
from dts_planner.models.configs import Preprocess
from dts_planner.models.preprocessing import prepare_frames

Source = str | os.PathLike | Iterable[str | os.PathLike]


def clip_frame_indices(length: int, start: int, num_frames: int) -> np.ndarray:
    """``num_frames`` indices spaced uniformly from ``start`` to the last frame ``length - 1``."""
    return np.round(np.linspace(start, length - 1, num_frames)).astype(np.int64)


ClipKey = int | tuple[int, float]
"""An episode index (random start) or (episode index, start as a fraction of the episode)."""


class VideoClipDataset(Dataset):
    """AVDC training clips, one per episode per epoch, from a random start to the episode end.

    Item: ``frames`` (F, H, W, 3) uint8 (frame 0 is the conditioning frame, then F - 1 future
    frames up to the last frame of the demonstration) and ``instruction`` (str). With
    ``image_size`` (h, w), frames of another size are brought to it as the planner brings camera
    images to the model (``prepare_frames`` with ``preprocess``).

    Keys: ``(episode, u)`` takes the clip starting at ``floor(u * length)`` (u in [0, 1)), so a
    sampler can draw everything random in the main process; a plain
    ``episode`` draws the start here, from a generator seeded per DataLoader worker (workers
    never repeat each other's draws). Training uses `StepBatchSampler`.
    """

    def __init__(self, source: Source, num_frames: int = 8, tasks: Sequence[str] | None = None,
                 successful_only: bool = True, seed: int = 0,
                 image_size: tuple[int, int] | None = None,
                 preprocess: Preprocess = "crop_resize") -> None:
        """Load the RGB frames of the (successful) episodes of the shards in ``source``."""
        self.table = load_episodes(source, ("rgb",), successful_only, tasks)
        self.num_frames = num_frames
        self.seed = seed
        self.image_size = image_size
        self.preprocess = preprocess
        self._rng: np.random.Generator | None = None
        self._rng_owner: tuple[int, int] | None = None

    def __len__(self) -> int:
        """Return the number of episodes."""
        return len(self.table)

    def _generator(self) -> np.random.Generator:
        """Return this process's generator (from ``seed`` and the DataLoader worker's seed)."""
        info = get_worker_info()
        owner = (os.getpid(), info.seed if info is not None else -1)
        if self._rng is None or self._rng_owner != owner:
            entropy = [self.seed] if info is None else [self.seed, info.seed % 2**63]
            self._rng, self._rng_owner = np.random.default_rng(entropy), owner
        return self._rng

    def __getitem__(self, key: ClipKey) -> dict[str, Any]:
        """Return the clip of an episode from a given (or a random) start frame."""
        index, fraction = key if isinstance(key, tuple) else (key, None)
        length = int(self.table.lengths[index])
        start = (int(self._generator().integers(0, length)) if fraction is None
                 else min(length - 1, int(fraction * length)))
        rows = self.table.starts[index] + clip_frame_indices(length, start, self.num_frames)
        frames = self.table.frames["rgb"][rows]
        if self.image_size is not None and frames.shape[1:3] != tuple(self.image_size):
            frames = prepare_frames(frames, self.image_size, self.preprocess)
        return {"frames": frames, "instruction": str(self.table.instruction[index])}


def balanced_weights(groups: np.ndarray) -> np.ndarray:
    """Return sampling probabilities (N,) that make every group (e.g. task) equally likely."""
    _, group_of_item, items_per_group = np.unique(groups, return_inverse=True,
                                                  return_counts=True)
    weights = 1.0 / items_per_group[group_of_item]
    return weights / weights.sum()


ChunkKey = int | tuple[int, float]
"""A step index (the shortest goal offset) or (step index, u in [0, 1) choosing the offset)."""


class ActionChunkDataset(Dataset):
    """Hindsight-relabelled action chunks (GCP): observation, a later goal frame, the actions.

    One sample per recorded step t of every episode but its last frame: ``rgb`` (S, S, 3)
    uint8 at t, ``goal_rgb`` at min(t + k, last frame), ``actions`` (horizon, 4) float32 taken
    from t on, clipped to [-1, 1] (past the episode end: zero motion with the last gripper
    effort), ``valid`` (horizon,) bool (False past the end), ``hand_pos`` (3,) float32 metres,
    ``gripper`` (1,) float32 the gripper effort commanded at t - 1 (0 at t = 0),
    ``goal_hand_pos`` (3,) and ``goal_gripper`` (1,) the same at the goal frame (the goal's
    state, for auxiliary losses), ``instruction`` (str) and any ``extra`` per-frame fields at t.

    goal_offset: k, fixed, or a range (lo, hi) from which the key's u draws k uniformly
    (so plans whose frames are farther apart or closer than GCP's 16 steps are covered).
    image_size: bring every frame to S x S once, at load (as the planner brings camera images
    to the model). ``__getitems__`` gathers a whole batch with array indexing (the DataLoader
    uses it; pass ``collate_fn=chunks_to_tensors``).
    """

    def __init__(self, source: Source | EpisodeTable, horizon: int = 16,
                 goal_offset: int | tuple[int, int] = 16, extra: Sequence[str] = (),
                 tasks: Sequence[str] | None = None, successful_only: bool = True,
                 episodes: np.ndarray | None = None, image_size: int | None = None) -> None:
        """Load (or reuse) the episodes' frames; `episodes` picks a subset of the table."""
        self.horizon = horizon
        self.goal_range = ((goal_offset, goal_offset) if isinstance(goal_offset, int)
                           else (int(goal_offset[0]), int(goal_offset[1])))
        self.extra = tuple(extra)
        if isinstance(source, EpisodeTable):
            self.table = source
        else:
            fields = tuple(dict.fromkeys(("rgb", "action", "hand_pos") + self.extra))
            self.table = load_episodes(source, fields, successful_only, tasks)
        table = self.table
        rgb = table.frames["rgb"]
        if image_size is not None and rgb.shape[1:3] != (image_size, image_size):
            if "rgb_resized" not in table.frames or \
                    table.frames["rgb_resized"].shape[1] != image_size:
                table.frames["rgb_resized"] = prepare_frames(rgb, (image_size, image_size))
            rgb = table.frames["rgb_resized"]
        self.images = rgb
        chosen = np.arange(len(table)) if episodes is None else np.asarray(episodes)
        self.episodes = chosen
        self.frame_of_step = np.concatenate(
            [table.starts[e] + np.arange(table.lengths[e] - 1) for e in chosen]
            or [np.zeros(0, np.int64)]).astype(np.int64)
        self.episode_of_step = np.repeat(chosen, table.lengths[chosen] - 1)
        self.actions = np.clip(table.frames["action"], -1.0, 1.0).astype(np.float32)

    def __len__(self) -> int:
        """Return the number of samples (recorded steps)."""
        return len(self.frame_of_step)

    def goal_offsets(self, fractions: np.ndarray) -> np.ndarray:
        """Goal offsets k (N,) for fractions u (N,) in [0, 1)."""
        low, high = self.goal_range
        return low + np.minimum((fractions * (high - low + 1)).astype(np.int64), high - low)

    def __getitems__(self, keys: Sequence[ChunkKey]) -> dict[str, Any]:
        """Return the batch of samples for keys, as arrays with a leading batch axis."""
        pairs = [key if isinstance(key, tuple) else (key, 0.0) for key in keys]
        index = np.array([int(i) for i, _ in pairs])
        fractions = np.array([float(u) for _, u in pairs])
        table = self.table
        frames = self.frame_of_step[index]
        episodes = self.episode_of_step[index]
        first = table.starts[episodes]
        last = first + table.lengths[episodes] - 1
        steps = frames[:, None] + np.arange(self.horizon)[None]
        actions = self.actions[np.minimum(steps, last[:, None] - 1)]
        beyond = steps >= last[:, None]
        actions[..., :3][beyond] = 0.0
        previous = np.where(frames > first, self.actions[np.maximum(frames - 1, 0), 3], 0.0)
        goals = np.minimum(frames + self.goal_offsets(fractions), last)
        batch = {"rgb": self.images[frames], "goal_rgb": self.images[goals],
                 "actions": actions, "valid": ~beyond,
                 "hand_pos": table.frames["hand_pos"][frames].astype(np.float32),
                 "gripper": previous[:, None].astype(np.float32),
                 "goal_hand_pos": table.frames["hand_pos"][goals].astype(np.float32),
                 "goal_gripper": np.where(goals > first, self.actions[np.maximum(goals - 1, 0), 3],
                                          0.0)[:, None].astype(np.float32),
                 "instruction": [str(table.instruction[e]) for e in episodes]}
        batch.update({name: table.frames[name][frames] for name in self.extra})
        return batch

    def __getitem__(self, key: ChunkKey) -> dict[str, Any]:
        """Return one sample."""
        return {name: value[0] for name, value in self.__getitems__([key]).items()}


def chunks_to_tensors(batch: dict[str, Any]) -> dict[str, Any]:
    """Collate `ActionChunkDataset.__getitems__` batches for a DataLoader: numpy -> tensors."""
    return {name: torch.from_numpy(np.ascontiguousarray(value))
            if isinstance(value, np.ndarray) else value for name, value in batch.items()}


class StepBatchSampler(Sampler):
    """Batches of keys ``(index, u)``, one batch per training step, for any keyed dataset.

    Step s draws its batch from a generator seeded with (seed, s) alone, so a run resumed at
    step s sees exactly the batches of an uninterrupted run, whatever the number of workers.
    Indices are drawn with probabilities ``weights`` (with replacement), u uniformly in [0, 1).
    """

    def __init__(self, weights: np.ndarray, batch_size: int, seed: int, first_step: int,
                 last_step: int) -> None:
        """Yield the batches of steps first_step .. last_step - 1."""
        self.weights = np.asarray(weights, dtype=np.float64)
        self.batch_size = batch_size
        self.seed = seed
        self.steps = range(first_step, last_step)

    def __len__(self) -> int:
        """Return the number of batches (steps)."""
        return len(self.steps)

    def __iter__(self) -> Iterator[list[tuple[int, float]]]:
        """Yield one list of batch_size keys per step."""
        for step in self.steps:
            rng = np.random.default_rng([self.seed, step])
            chosen = rng.choice(len(self.weights), self.batch_size, p=self.weights)
            yield [(int(i), float(u)) for i, u in zip(chosen, rng.random(self.batch_size))]
