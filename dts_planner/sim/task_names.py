"""Meta-World task names and instructions, without MuJoCo or Meta-World (light to import).

The data format, the datasets and the training commands use these; `dts_planner.sim.tasks`
adds what needs the simulator (validation against Meta-World's task list, task variations,
object geoms).
"""

from __future__ import annotations

#: AVDC's (and the DTS paper's) 11 Meta-World tasks.
AVDC_TASKS: tuple[str, ...] = (
    "assembly", "basketball", "button-press", "button-press-topdown", "door-close", "door-open",
    "faucet-close", "faucet-open", "hammer", "handle-press", "shelf-place")

#: The default model's tasks: the default data, quality and calibration set (AVDC's 11).
DEFAULT_TASKS: tuple[str, ...] = AVDC_TASKS

#: AVDC's three evaluation cameras.
AVDC_CAMERAS: tuple[str, ...] = ("corner", "corner2", "corner3")


def task_key(task: str) -> str:
    """Meta-World v3 environment name, not validated ("door-open" -> "door-open-v3")."""
    return task if task.endswith("-v3") else f"{task}-v3"


def instruction_for(task: str) -> str:
    """AVDC-style instruction: the task name with '-' -> ' ' ("door-open" -> "door open")."""
    return task_key(task)[:-3].replace("-", " ")
