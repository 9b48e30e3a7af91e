"""Meta-World v3 task names (validated), seeded task variations and manipulated objects."""

from __future__ import annotations

from functools import lru_cache

import metaworld
from metaworld.env_dict import ALL_V3_ENVIRONMENTS
import mujoco
import numpy as np

from dts_planner.sim.task_names import (  # noqa: F401 (re-exported)
    AVDC_CAMERAS, AVDC_TASKS, DEFAULT_TASKS, instruction_for, task_key)

#: Tasks whose goal is a hand position: the "manipulated object" is the gripper itself.
_HAND_GOAL_TASKS = frozenset({"reach-v3", "reach-wall-v3"})

#: The part of the manipulated object the gripper takes (geom names), where it is not the whole
#: object: the handle of the door or the wrench, not the door or the whole nut.
GRASP_PARTS: dict[str, tuple[str, ...]] = {
    "assembly-v3": ("WrenchHandle",), "door-open-v3": ("handle",),
    "hammer-v3": ("HammerHandle",),
}

#: Meta-World generates this many task variations (object/goal placements) per benchmark seed.
_VARIATIONS_PER_SEED = 50


def env_name(task: str) -> str:
    """Meta-World environment name ("door-open" or "door-open-v3" -> "door-open-v3")."""
    name = task_key(task)
    if name not in ALL_V3_ENVIRONMENTS:
        raise ValueError(f"unknown Meta-World task {task!r}; "
                         f"known: {sorted(n[:-3] for n in ALL_V3_ENVIRONMENTS)}")
    return name


@lru_cache(maxsize=8)
def _variations(name: str, block: int) -> tuple[metaworld.Task, ...]:
    """Return the 50 task variations MT1 draws for one benchmark seed (about 1 s)."""
    return tuple(metaworld.MT1(name, seed=block).train_tasks)


def task_variation(name: str, seed: int) -> metaworld.Task:
    """Deterministic task variation (object and goal placement) for an integer seed >= 0."""
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    block, index = divmod(seed, _VARIATIONS_PER_SEED)
    return _variations(name, block)[index]


def object_geom_ids(model: mujoco.MjModel, name: str) -> np.ndarray:
    """Geom ids (N,) of the task's manipulated object (or of its part in `GRASP_PARTS`).

    The object is every movable body (one with a joint) outside the robot, with the bodies
    attached to it; for reaching tasks it is the gripper (the hand body and its descendants).
    """
    if name in GRASP_PARTS:
        return np.array(sorted(model.geom(part).id for part in GRASP_PARTS[name]), np.int32)
    hand = model.body("hand").id
    robot_root = model.body_rootid[hand]
    bodies = np.arange(model.nbody)
    if name in _HAND_GOAL_TASKS:
        selected = [b for b in bodies if _descends_from(model, b, hand)]
    else:
        movable = [b for b in bodies
                   if model.body_jntnum[b] > 0 and model.body_rootid[b] != robot_root]
        selected = [b for b in bodies if any(_descends_from(model, b, m) for m in movable)]
    return np.flatnonzero(np.isin(model.geom_bodyid, selected)).astype(np.int32)


def _descends_from(model: mujoco.MjModel, body: int, ancestor: int) -> bool:
    """Whether ``body`` is ``ancestor`` or lies in its kinematic subtree."""
    while body > 0:
        if body == ancestor:
            return True
        body = model.body_parentid[body]
    return False
