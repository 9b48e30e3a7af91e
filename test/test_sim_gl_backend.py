"""The OpenGL backend is chosen where a renderer is made, not by importing dts_planner.sim."""

import gc
import os
import subprocess
import sys
import threading

import numpy as np

SCRIPT = """
import os, sys
import mujoco                                  # before anything of ours: GLContext = GLFW
import dts_planner.sim
assert "MUJOCO_GL" not in os.environ, "importing dts_planner.sim set MUJOCO_GL"
from dts_planner.sim.renderer import SceneRenderer
model = mujoco.MjModel.from_xml_string(
    '<mujoco><worldbody><camera name="c" pos="0 0 1"/><geom size=".2"/></worldbody></mujoco>')
data = mujoco.MjData(model)
mujoco.mj_forward(model, data)
with SceneRenderer(model, 8, 8) as renderer:
    frame = renderer.render(data, 0)
assert (frame.segmentation >= 0).any() and os.environ["MUJOCO_GL"] in ("egl", "osmesa")
print("rendered")
"""


def test_renderer_works_without_mujoco_gl_and_after_mujoco_was_imported():
    env = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "PYOPENGL_PLATFORM")}
    result = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0 and "rendered" in result.stdout, result.stderr[-2000:]


def _scene():
    import mujoco

    model = mujoco.MjModel.from_xml_string(
        '<mujoco><worldbody><camera name="c" pos="0 0 1"/><geom size=".2"/></worldbody></mujoco>')
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    return model, data


def test_a_renderer_dropped_without_close_frees_its_framebuffer():
    """Renderers share one GL context: a dropped one must free its objects there (no leak)."""
    from dts_planner.sim.renderer import SceneRenderer

    renderer = SceneRenderer(_scene()[0], 8, 8)
    context = renderer._context
    assert context.offFBO > 0
    del renderer
    gc.collect()
    assert context.offFBO == 0


def test_a_renderer_collected_during_another_ones_draw(monkeypatch):
    """The garbage collector may free a renderer inside a draw: no deadlock, the draw is whole."""
    from dts_planner.sim.renderer import SceneRenderer

    model, data = _scene()
    renderer = SceneRenderer(model, 8, 8)
    before = renderer.render(data, 0)
    dropped = SceneRenderer(model, 8, 8)
    dropped.cycle = dropped             # only the cyclic collector frees it
    del dropped
    draw = SceneRenderer._draw
    monkeypatch.setattr(SceneRenderer, "_draw",
                        lambda self, *args, **kwargs: (gc.collect(), draw(self, *args, **kwargs)))
    frames = []
    thread = threading.Thread(target=lambda: frames.append(renderer.render(data, 0)), daemon=True)
    thread.start()
    thread.join(30.0)
    assert frames, "the draw hung (the shared context's lock is not re-entrant?)"
    assert np.array_equal(frames[0].rgb, before.rgb)
    assert np.array_equal(frames[0].segmentation, before.segmentation)
    renderer.close()
