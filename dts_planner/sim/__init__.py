"""Meta-World simulation: a task seen through a camera, with depth, segmentation and camera pose.

``MUJOCO_GL`` is chosen here (egl, osmesa fallback) before MuJoCo is imported: import this
package before anything that imports ``mujoco`` or ``metaworld``.
"""

from dts_planner.sim.gl_backend import select_gl_backend

select_gl_backend()

from dts_planner.sim.metaworld_env import MetaWorldEnv, Observation, StepResult  # noqa: E402
from dts_planner.sim.tasks import DEFAULT_TASKS, env_name, instruction_for  # noqa: E402

__all__ = ["DEFAULT_TASKS", "MetaWorldEnv", "Observation", "StepResult", "env_name",
           "instruction_for", "select_gl_backend"]
