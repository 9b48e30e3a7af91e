"""The action-predictor interface shared by every predictor and by the ROS node.

A predictor turns the current observation plus the imagined future of a plan into a chunk of
actions. Predictors are stateful: they follow one plan over several calls (the optical-flow
policy walks its subgoals, the diffusion policy walks its goal frames) and ask for a new plan
with `ActionChunk.replan`. Passing frames that differ from the previous call starts a new plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class ActionSpace:
    """Bounds and names of one action vector.

    A continuous space has `labels == ()`; a discrete one stores label indices in its single
    dimension (value i means `labels[i]`).
    """

    name: str
    dimension_names: tuple[str, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    labels: tuple[str, ...] = ()

    @property
    def dim(self) -> int:
        """Length of one action vector."""
        return len(self.dimension_names)

    def contains(self, data: np.ndarray) -> bool:
        """Whether every row of `data` (horizon, dim) lies inside the bounds."""
        data = np.asarray(data)
        return bool(data.ndim == 2 and data.shape[1] == self.dim
                    and np.all(data >= np.asarray(self.low))
                    and np.all(data <= np.asarray(self.high)))


METAWORLD_ACTION_SPACE = ActionSpace(
    name="metaworld_ee_delta",
    dimension_names=("dx", "dy", "dz", "gripper"),
    low=(-1.0, -1.0, -1.0, -1.0),
    high=(1.0, 1.0, 1.0, 1.0),
)
"""Meta-World: end-effector position delta (scaled by the env) and gripper effort (+1 closes)."""
METAWORLD_DT = 0.0125
"""Seconds per Meta-World step (MuJoCo timestep 2.5 ms x frame_skip 5)."""

NAVIGATION_LABELS = ("Done", "MoveAhead", "RotateLeft", "RotateRight")
NAVIGATION_ACTION_SPACE = ActionSpace(
    name="ithor_discrete",
    dimension_names=("action",),
    low=(0.0,),
    high=(float(len(NAVIGATION_LABELS) - 1),),
    labels=NAVIGATION_LABELS,
)
"""iTHOR-style mobile base: one discrete action per step, an index into NAVIGATION_LABELS."""


@dataclass
class ActionChunk:
    """A short sequence of actions predicted at one time.

    data: (horizon, dim) float32 actions; execute `data[:num_execute]`, then call the predictor
    again. dt: seconds between consecutive actions. replan: the predictor is done with (or gave
    up on) the current plan and wants a new one before its next call.
    """

    data: np.ndarray
    dt: float
    action_space: ActionSpace
    num_execute: int
    replan: bool = False
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Check the shape against the action space and fix the dtype to float32."""
        self.data = np.asarray(self.data, dtype=np.float32)
        if self.data.ndim != 2 or self.data.shape[1] != self.action_space.dim:
            raise ValueError(f"data {self.data.shape} does not fit {self.action_space.name}")
        if not 0 <= self.num_execute <= self.data.shape[0]:
            raise ValueError(f"num_execute {self.num_execute} outside horizon")

    @property
    def dimension_names(self) -> tuple[str, ...]:
        """Name of each column of `data`."""
        return self.action_space.dimension_names

    @property
    def horizon(self) -> int:
        """Number of predicted actions."""
        return int(self.data.shape[0])


@dataclass
class PredictorObservation:
    """What a predictor reads from an observation (`dts_planner.sim.Observation` has it too).

    rgb (H, W, 3) uint8; depth (H, W) float32 metres along the optical axis; object_mask (H, W)
    bool; hand_pos (3,) metres in the world frame; intrinsics (3, 3) pinhole K in pixels;
    cam_to_world (4, 4) pose of the OpenCV camera frame (x right, y down, z forward).
    Predictors read these attributes only, so any object that has them will do.
    """

    rgb: np.ndarray
    depth: np.ndarray
    object_mask: np.ndarray
    hand_pos: np.ndarray
    intrinsics: np.ndarray
    cam_to_world: np.ndarray


class ActionPredictor(Protocol):
    """Turns an observation and a plan's imagined frames into actions."""

    action_space: ActionSpace

    def reset(self, seed: int | None = None) -> None:
        """Forget the plan and all episode state (call at the start of an episode).

        seed: re-seed the predictor's random draws with it; afterwards the predictor behaves
        exactly like a freshly built one with that seed. None: the seed it was built with.
        """

    def predict(self, observation: PredictorObservation,
                plan_frames: np.ndarray) -> ActionChunk:
        """Predict the next actions.

        plan_frames: (F, H, W, 3) uint8 RGB, the imagined future after `observation` (without
        the conditioning frame), as in `dts_planner.planning.Plan.frames`.
        """


class PlanWatcher:
    """Tells whether the plan frames passed to a predictor changed since the last call."""

    def __init__(self) -> None:
        """Start with no plan seen."""
        self._frames: np.ndarray | None = None

    def reset(self) -> None:
        """Forget the last plan."""
        self._frames = None

    def is_new(self, plan_frames: np.ndarray) -> bool:
        """Whether plan_frames (F, H, W, 3) differ from the previous call's (and remember them)."""
        if self._frames is not None and np.array_equal(self._frames, plan_frames):
            return False
        self._frames = np.array(plan_frames, copy=True)
        return True
