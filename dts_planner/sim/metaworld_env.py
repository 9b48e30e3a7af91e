"""Meta-World v3 task with a fixed camera: observations with RGB, depth, segmentation, camera.

Episodes end at the first success (Meta-World's ``info["success"]`` flickers, so success is
tracked as "any success so far") or after ``max_steps`` steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
import warnings

from metaworld.env_dict import ALL_V3_ENVIRONMENTS
from metaworld.policies import ENV_POLICY_MAP
import mujoco
import numpy as np

from dts_planner.sim.camera import cam_to_world, camera_pose, intrinsics, is_upside_down
from dts_planner.sim.renderer import SceneRenderer
from dts_planner.sim.tasks import env_name, instruction_for, object_geom_ids, task_variation


@dataclass
class Observation:
    """What the robot sees and knows at one step (image rows top to bottom, upright)."""

    rgb: np.ndarray           # (H, W, 3) uint8
    # depth, segmentation, object_mask: None from an env with depth_views off (colour only)
    depth: np.ndarray | None         # (H, W) float32, metres along the optical axis
    segmentation: np.ndarray | None  # (H, W) int32 MuJoCo geom id, -1 for background
    object_mask: np.ndarray | None   # (H, W) bool, pixels of the task's manipulated object
    hand_pos: np.ndarray      # (3,) float64 gripper (TCP) position in the world, metres
    state: np.ndarray         # (39,) float64 Meta-World observation vector
    intrinsics: np.ndarray    # (3, 3) K, OpenCV pixel convention (centre of pixel 0 at 0)
    cam_to_world: np.ndarray  # (4, 4) OpenCV camera frame (x right, y down, z forward)


@dataclass
class StepResult:
    """Outcome of one environment step."""

    observation: Observation
    reward: float
    success: bool  # the task has succeeded at some step of this episode
    done: bool     # success, or the step limit was reached
    info: dict[str, Any] = field(default_factory=dict)


class MetaWorldEnv:
    """One Meta-World v3 task seen through one camera; ``close()`` (or ``with``) frees GL."""

    def __init__(self, task: str, camera: str = "corner", seed: int = 0, resolution: int = 64,
                 max_steps: int = 500, depth_views: bool = True) -> None:
        """Build the task variation for ``seed`` rendered at resolution x resolution pixels.

        ``depth_views`` (an attribute, may change between steps): render depth, segmentation
        and the object mask; off, observations have colour only (one render pass: about half
        the rendering time) and None there.
        """
        self.task = env_name(task)
        self.depth_views = depth_views
        self.instruction = instruction_for(task)
        self.camera = camera
        self.resolution = resolution
        self.seed = seed
        self.sim = ALL_V3_ENVIRONMENTS[self.task]()
        self.sim.set_task(task_variation(self.task, seed))
        self.max_steps = min(max_steps, self.sim.max_path_length)
        model = self.sim.model
        self._camera_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
        if self._camera_id < 0:
            names = [model.camera(i).name for i in range(model.ncam)]
            self.sim.close()
            raise ValueError(f"unknown camera {camera!r}; known: {names}")
        self._object_geoms = object_geom_ids(model, self.task)
        self._expert = ENV_POLICY_MAP[self.task]()
        self._renderer: SceneRenderer | None = SceneRenderer(model, resolution, resolution)
        self._steps = 0
        self._success = False
        self._done = True
        self._state: np.ndarray | None = None    # Meta-World's latest state vector (39,)

    def reset(self, seed: int | None = None) -> Observation:
        """Start an episode (a new task variation if ``seed`` is given) and observe it."""
        if seed is not None:
            self.seed = seed
            self.sim.set_task(task_variation(self.task, seed))
        self._state, _ = self.sim.reset()
        self._steps, self._success, self._done = 0, False, False
        return self.observe()

    def step(self, action: np.ndarray) -> StepResult:
        """Apply an action (4,) in [-1, 1]: hand xyz displacement and gripper effort."""
        if self._done:
            raise RuntimeError("episode is over (or not started): call reset()")
        action = np.clip(np.asarray(action, dtype=np.float32).reshape(4), -1.0, 1.0)
        self._state, reward, _, truncated, info = self.sim.step(action)
        self._steps += 1
        self._success = self._success or bool(info.get("success", 0.0))
        self._done = self._success or truncated or self._steps >= self.max_steps
        return StepResult(self.observe(), float(reward), self._success, self._done, info)

    def expert_action(self, observation: Observation) -> np.ndarray:
        """Meta-World's scripted expert action (4,) float32 for an observation."""
        with warnings.catch_warnings():   # the experts saturate on purpose; the env clips
            warnings.filterwarnings("ignore", "Constant", UserWarning)
            action = self._expert.get_action(observation.state)
        return np.asarray(action, dtype=np.float32)

    @property
    def camera_pose(self) -> np.ndarray:
        """Camera pose (7,): position xyz + quaternion xyzw, what cam_to_world is built from."""
        data = self.sim.data
        return camera_pose(data, self._camera_id, is_upside_down(data, self._camera_id))

    @property
    def steps(self) -> int:
        """Steps taken in the current episode."""
        return self._steps

    def observe(self) -> Observation:
        """Render the camera at the current state (as reset or the last step left it).

        Observing again renders again: e.g. with depth views after turning them on.
        """
        if self._renderer is None:
            raise RuntimeError("MetaWorldEnv used after close()")
        if self._state is None:
            raise RuntimeError("nothing to observe before the first reset()")
        state, data = self._state, self.sim.data
        turned = is_upside_down(data, self._camera_id)
        frame = self._renderer.render(data, self._camera_id, turned, self.depth_views)
        return Observation(
            rgb=frame.rgb, depth=frame.depth, segmentation=frame.segmentation,
            object_mask=None if frame.segmentation is None else np.isin(
                frame.segmentation, self._object_geoms),
            hand_pos=np.array(state[:3], dtype=np.float64),
            state=np.array(state, dtype=np.float64),
            intrinsics=intrinsics(self.sim.model, self._camera_id, self.resolution,
                                  self.resolution),
            cam_to_world=cam_to_world(data, self._camera_id, turned))

    def close(self) -> None:
        """Free the renderer and the simulator (idempotent)."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
            self.sim.close()

    def __enter__(self) -> MetaWorldEnv:
        """Use as a context manager that closes on exit."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the environment."""
        self.close()
