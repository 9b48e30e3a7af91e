"""MuJoCo's offscreen OpenGL backend, chosen when a renderer is created, and the shared context.

MuJoCo binds ``mujoco.GLContext`` from ``MUJOCO_GL`` once, at import time; unset, that is GLFW,
which needs a display. `gl_context` therefore picks the context class itself: EGL (headless,
Mesa llvmpipe or a GPU driver), OSMesa when no EGL library is installed, or whatever the user
set in ``MUJOCO_GL`` (kept as it is). Importing this module imports nothing from MuJoCo.

`SharedGLContext` is the one GL context of a process: every renderer draws in it, so only the
first pays the driver's set-up of a fresh context (about 0.2 s of CPU with llvmpipe).
"""

from __future__ import annotations

from contextlib import contextmanager
import ctypes.util
import os
import threading
from typing import Any, Iterator


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


def release_current_context() -> None:
    """Leave the calling thread with no current OpenGL context (of the selected backend)."""
    backend = select_gl_backend().lower()
    if backend == "egl":
        import mujoco.egl
        from mujoco.egl import egl_ext as EGL

        EGL.eglMakeCurrent(mujoco.egl.EGL_DISPLAY, EGL.EGL_NO_SURFACE, EGL.EGL_NO_SURFACE,
                           EGL.EGL_NO_CONTEXT)
    elif backend == "osmesa":
        from OpenGL import GL, osmesa

        osmesa.OSMesaMakeCurrent(None, None, GL.GL_FLOAT, 0, 0)
    else:
        import glfw

        glfw.make_context_current(None)


class SharedGLContext:
    """One offscreen GL context for many renderers, in any threads (one thread at a time).

    ``with shared.current():`` takes the lock, makes the context current (creating it on first
    use) and releases it from the thread on exit, so the next user may be another thread. It
    nests (a renderer freed by the garbage collector inside another's draw): only the outermost
    block switches the context. Renderers draw into their own MuJoCo offscreen framebuffers; the
    context's default framebuffer (``size`` pixels square, used by OSMesa only) is never drawn.
    """

    def __init__(self, size: int = 64) -> None:
        """Prepare the context (created on the first ``current()``)."""
        self._size = size
        self._lock = threading.RLock()
        self._depth = 0
        self._context: Any = None

    @contextmanager
    def current(self) -> Iterator[None]:
        """Hold the context current in the calling thread for the ``with`` block."""
        with self._lock:
            if self._depth == 0:
                if self._context is None:
                    self._context = gl_context(self._size, self._size)
                self._context.make_current()
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    release_current_context()

    def free(self) -> None:
        """Destroy the context (idempotent; a later ``current()`` creates a new one)."""
        with self._lock:
            if self._context is not None:
                self._context.free()
                self._context = None
