"""MuJoCo's offscreen OpenGL backend, chosen when a renderer is created.

MuJoCo binds ``mujoco.GLContext`` from ``MUJOCO_GL`` once, at import time; unset, that is GLFW,
which needs a display. `gl_context` therefore picks the context class itself: EGL (headless,
Mesa llvmpipe or a GPU driver), OSMesa when no EGL library is installed, or whatever the user
set in ``MUJOCO_GL`` (kept as it is). Importing this module imports nothing from MuJoCo.
"""

from __future__ import annotations

import ctypes.util
import os
from typing import Any


def select_gl_backend() -> str:
    """Set ``MUJOCO_GL`` to egl (or osmesa if libEGL is missing) unless set; return the value."""
    if not os.environ.get("MUJOCO_GL"):
        has_egl = ctypes.util.find_library("EGL") is not None
        has_osmesa = ctypes.util.find_library("OSMesa") is not None
        os.environ["MUJOCO_GL"] = "osmesa" if has_osmesa and not has_egl else "egl"
    return os.environ["MUJOCO_GL"]


def gl_context(width: int, height: int) -> Any:
    """Create an offscreen OpenGL context of the selected backend (call make_current on it)."""
    backend = select_gl_backend().lower()
    if backend == "egl":
        from mujoco.egl import GLContext
    elif backend == "osmesa":
        from mujoco.osmesa import GLContext
    else:
        from mujoco import GLContext
    return GLContext(width, height)
