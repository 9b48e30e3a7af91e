"""The OpenGL backend is chosen where a renderer is made, not by importing dts_planner.sim."""

import os
import subprocess
import sys

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
