"""Meta-World simulation: a task seen through a camera, with depth, segmentation and camera pose.

Importing this package is light: the simulator parts (MuJoCo, Meta-World) load on first use of
a name that needs them, and `dts_planner.sim.task_names` never loads them. The OpenGL backend
(``MUJOCO_GL``: egl, osmesa fallback) is chosen when a renderer is created
(`dts_planner.sim.gl_backend.gl_context`), not at import.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from dts_planner.sim.task_names import (
    AVDC_CAMERAS, AVDC_TASKS, DEFAULT_TASKS, instruction_for, task_key)

_LAZY = {"MetaWorldEnv": "metaworld_env", "Observation": "metaworld_env",
         "StepResult": "metaworld_env", "env_name": "tasks", "select_gl_backend": "gl_backend"}

__all__ = ["AVDC_CAMERAS", "AVDC_TASKS", "DEFAULT_TASKS", "instruction_for", "task_key",
           *_LAZY]


def __getattr__(name: str) -> Any:
    """Import the simulator parts on first use (PEP 562)."""
    if name in _LAZY:
        return getattr(import_module(f"dts_planner.sim.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
