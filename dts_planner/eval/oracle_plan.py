"""Oracle plans: the frames the scripted expert would see from the current state.

A second ("shadow") environment of the same task variation is set to the main environment's
MuJoCo state, the expert runs until success (or `horizon` steps), and the plan is the F frames
after the current one of F + 1 frames spaced evenly from the current frame to the last, exactly
as the video model's training clips are cut (`dts_planner.data.clip_frame_indices`). With
`image_size` the frames are brought to the video model's size as the planner brings camera
images (so the predictor sees a perfect plan at the model's resolution). Feeding predictors
perfect videos separates their errors from the video model's.
"""

from __future__ import annotations

import numpy as np

from dts_planner.data.datasets import clip_frame_indices
from dts_planner.eval.closed_loop import PlanRecord
from dts_planner.models.preprocessing import prepare_frames
from dts_planner.sim import MetaWorldEnv


def copy_state(source: MetaWorldEnv, target: MetaWorldEnv) -> None:
    """Give `target` the physical state of `source` (joints, hand mocap, previous observation)."""
    src, dst = source.sim, target.sim
    for name in ("mocap_pos", "mocap_quat", "act"):
        getattr(dst.data, name)[:] = getattr(src.data, name)
    dst.set_state(src.data.qpos, src.data.qvel)  # also runs mj_forward
    dst._prev_obs = np.copy(src._prev_obs)


class OraclePlanner:
    """PlanFunction factory: expert-rollout frames from the main environment's current state."""

    def __init__(self, env: MetaWorldEnv, num_frames: int = 7, horizon: int = 200,
                 image_size: tuple[int, int] | None = None) -> None:
        """Shadow `env` (same task, camera, seed and resolution); close() frees the shadow."""
        self.env = env
        self.num_frames = num_frames
        self.horizon = horizon
        self.image_size = image_size
        self.shadow = MetaWorldEnv(env.task, camera=env.camera, seed=env.seed,
                                   resolution=env.resolution, max_steps=horizon,
                                   depth_views=False)      # plans are colour frames

    def __call__(self, observation: object) -> tuple[np.ndarray, PlanRecord]:
        """Plan frames (F, H, W, 3) uint8; the record counts expert steps as NFE and depth."""
        self.shadow.reset(self.env.seed)
        copy_state(self.env, self.shadow)
        frames = [observation.rgb]
        for _ in range(self.horizon):
            step = self.shadow.step(self.shadow.expert_action(observation))
            observation = step.observation
            frames.append(observation.rgb)
            if step.done:
                break
        index = clip_frame_indices(len(frames), 0, self.num_frames + 1)[1:]
        plan = np.stack([frames[i] for i in index])
        if self.image_size is not None:
            plan = prepare_frames(plan, self.image_size)
        steps = len(frames) - 1
        return plan, PlanRecord(0.0, steps, steps)

    def close(self) -> None:
        """Free the shadow environment."""
        self.shadow.close()

    def __enter__(self) -> OraclePlanner:
        """Use as a context manager that closes the shadow on exit."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the shadow environment."""
        self.close()
