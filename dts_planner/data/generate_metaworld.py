"""Generate Meta-World demonstrations with the scripted experts into episode shards.

``python -m dts_planner.data.generate_metaworld --out data/metaworld11 --seeds 0:20``

Each (task, camera, block of seeds) becomes one shard ``{task}_{camera}_{first}-{last}.npz``
(format in ``dts_planner.data.shards``); existing shards are skipped, so an interrupted run
resumes. Seeds pick Meta-World task variations deterministically; episodes end at the first
success or after ``--max-steps``. Keep seeds >= 1000 for held-out evaluation.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from multiprocessing import get_context
import os
from pathlib import Path
from typing import Sequence

from tqdm import tqdm

from dts_planner.common.seeds import parse_seeds
from dts_planner.data.shards import Episode, write_shard
from dts_planner.sim import DEFAULT_TASKS, env_name, MetaWorldEnv

DEFAULT_CAMERAS = ("corner", "corner2", "corner3")


@dataclass(frozen=True)
class ShardJob:
    """Episodes of one task and camera for a contiguous block of seeds, written to ``path``."""

    task: str
    camera: str
    seeds: tuple[int, ...]
    resolution: int
    max_steps: int
    path: Path


def record_episode(env: MetaWorldEnv, seed: int) -> Episode:
    """Roll out the scripted expert from the task variation ``seed`` until done."""
    obs = env.reset(seed=seed)
    episode = Episode(task=env.task, camera=env.camera, instruction=env.instruction, seed=seed,
                      success=False, observations=[obs])
    done = False
    while not done:
        action = env.expert_action(obs)
        result = env.step(action)
        obs, done = result.observation, result.done
        episode.actions.append(action)
        episode.observations.append(obs)
        episode.success = result.success
    return episode


def run_job(job: ShardJob) -> int:
    """Record and write one shard; return the number of episodes."""
    with MetaWorldEnv(job.task, job.camera, seed=job.seeds[0], resolution=job.resolution,
                      max_steps=job.max_steps) as env:
        episodes = [record_episode(env, seed) for seed in job.seeds]
    write_shard(job.path, episodes)
    return len(episodes)


def plan_jobs(out: Path, tasks: Sequence[str], cameras: Sequence[str], seeds: Sequence[int],
              resolution: int, max_steps: int, seeds_per_shard: int) -> list[ShardJob]:
    """All shard jobs, in a deterministic order."""
    jobs = []
    for task in tasks:
        name = env_name(task)[:-3]
        for camera in cameras:
            for first in range(0, len(seeds), seeds_per_shard):
                block = tuple(seeds[first:first + seeds_per_shard])
                path = out / f"{name}_{camera}_{block[0]:05d}-{block[-1]:05d}.npz"
                jobs.append(ShardJob(name, camera, block, resolution, max_steps, path))
    return jobs


def generate(out: str | os.PathLike, tasks: Sequence[str] = DEFAULT_TASKS,
             cameras: Sequence[str] = DEFAULT_CAMERAS, seeds: Sequence[int] = range(0, 10),
             resolution: int = 64, max_steps: int = 500, seeds_per_shard: int = 10,
             workers: int = 1) -> list[Path]:
    """Write the missing shards (a progress bar counts episodes) and return all shard paths."""
    jobs = plan_jobs(Path(out), tasks, cameras, seeds, resolution, max_steps, seeds_per_shard)
    todo = [job for job in jobs if not job.path.exists()]
    with tqdm(total=sum(len(job.seeds) for job in todo), unit="episode",
              desc="demonstrations") as bar:
        if workers <= 1:
            for job in todo:
                bar.update(run_job(job))
        else:
            with get_context("spawn").Pool(workers) as pool:
                for count in pool.imap_unordered(run_job, todo):
                    bar.update(count)
    return [job.path for job in jobs]


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="output directory for the shards")
    parser.add_argument("--tasks", nargs="+", default=list(DEFAULT_TASKS))
    parser.add_argument("--cameras", nargs="+", default=list(DEFAULT_CAMERAS))
    parser.add_argument("--seeds", type=parse_seeds, default=parse_seeds("0:10"),
                        help='"START:STOP" (STOP excluded), "a,b,c" or one seed (default 0:10)')
    parser.add_argument("--resolution", type=int, default=64, help="square image side, pixels")
    parser.add_argument("--max-steps", type=int, default=500)
    parser.add_argument("--seeds-per-shard", type=int, default=10)
    parser.add_argument("--workers", type=int, default=1, help="parallel processes")
    args = parser.parse_args(argv)
    paths = generate(args.out, args.tasks, args.cameras, args.seeds, args.resolution,
                     args.max_steps, args.seeds_per_shard, args.workers)
    print(f"{len(paths)} shards in {args.out}")


if __name__ == "__main__":
    main()
