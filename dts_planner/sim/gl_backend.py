"""Pick MuJoCo's offscreen OpenGL backend before ``mujoco`` is first imported.

MuJoCo reads ``MUJOCO_GL`` once, at import time. Unset, it would try GLFW, which needs a display.
We default to EGL (headless, Mesa llvmpipe or a GPU driver) and fall back to OSMesa when no EGL
library is installed. A value the user already set is kept.
"""

from __future__ import annotations

import ctypes.util
import os


def select_gl_backend() -> str:
    """Set ``MUJOCO_GL`` to egl (or osmesa if libEGL is missing) unless set; return the value."""
    if not os.environ.get("MUJOCO_GL"):
        has_egl = ctypes.util.find_library("EGL") is not None
        has_osmesa = ctypes.util.find_library("OSMesa") is not None
        os.environ["MUJOCO_GL"] = "osmesa" if has_osmesa and not has_egl else "egl"
    return os.environ["MUJOCO_GL"]
