"""Torch datasets over episode shards: AVDC video clips and action-chunk samples, samplers."""

from __future__ import annotations

import os
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
from torch.utils.data import Dataset, get_worker_info, Sampler

from dts_planner.data.shards import load_episodes
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
    sampler can draw everything random in the main process (`ClipBatchSampler`); a plain
    ``episode`` draws the start here, from a generator seeded per DataLoader worker (workers
    never repeat each other's draws).
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


class ClipBatchSampler(Sampler):
    """Batches of clip keys ``(episode, start fraction)``, one batch per training step.

    Step s draws its batch from a generator seeded with (seed, s) alone, so a run resumed at
    step s sees exactly the batches of an uninterrupted run, whatever the number of workers.
    Episodes are drawn with ``weights`` (with replacement), starts uniformly.
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
            episodes = rng.choice(len(self.weights), self.batch_size, p=self.weights)
            yield [(int(e), float(u)) for e, u in zip(episodes, rng.random(self.batch_size))]


class ActionChunkDataset(Dataset):
    """(observation, goal ``horizon`` steps later, the ``horizon`` actions in between) samples.

    One item per recorded step t: ``rgb`` (H, W, 3) uint8 at t, ``goal_rgb`` at
    min(t + horizon, last frame), ``actions`` (horizon, 4) float32 taken from t on, ``valid``
    (horizon,) bool (False past the episode end, where actions are padded with zero motion and
    the last gripper effort), ``state`` (39,) float32, ``instruction`` (str), and any ``extra``
    per-frame fields at t (e.g. ``depth``, ``object_mask``, ``hand_pos``).
    """

    def __init__(self, source: Source, horizon: int = 16, extra: Sequence[str] = (),
                 tasks: Sequence[str] | None = None, successful_only: bool = True) -> None:
        """Load the needed fields of the (successful) episodes of the shards in ``source``."""
        self.horizon = horizon
        self.extra = tuple(extra)
        fields = tuple(dict.fromkeys(("rgb", "action", "state") + self.extra))
        self.table = load_episodes(source, fields, successful_only, tasks)
        steps = self.table.lengths - 1
        self.episode_of_step = np.repeat(np.arange(len(self.table)), steps)
        self.frame_of_step = np.concatenate(
            [start + np.arange(n) for start, n in zip(self.table.starts, steps)])

    def __len__(self) -> int:
        """Return the number of recorded steps."""
        return len(self.frame_of_step)

    def __getitem__(self, index: int) -> dict[str, Any]:
        """Return the sample at step ``index``."""
        frames = self.table.frames
        episode = self.episode_of_step[index]
        t = self.frame_of_step[index]
        last = self.table.starts[episode] + self.table.lengths[episode] - 1
        taken = frames["action"][t:min(t + self.horizon, last)]
        pad = np.zeros((self.horizon - len(taken), 4), np.float32)
        pad[:, 3] = taken[-1, 3]
        item = {"rgb": frames["rgb"][t], "goal_rgb": frames["rgb"][min(t + self.horizon, last)],
                "actions": np.concatenate([taken, pad]),
                "valid": np.arange(self.horizon) < len(taken),
                "state": frames["state"][t],
                "instruction": str(self.table.instruction[episode])}
        item.update({name: frames[name][t] for name in self.extra})
        return item
