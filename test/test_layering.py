"""The package layering as a contract, checked on the source (AST, nothing is imported).

Rules, for every module under dts_planner/:

1. ROS-free core: only ``dts_planner.ros`` imports ROS (rclpy, launch, *_msgs, ...).
2. Light data and training: importing a ``dts_planner.data`` or ``dts_planner.training``
   module loads no MuJoCo / Meta-World (its import-time closure, through package __init__s).
3. Torch-free node processes: importing ``dts_planner.ros.metaworld_bridge_node`` (a node
   process of its own under ``ros2 launch ... sim:=true``) or
   ``dts_planner.ros.action_predictor_node`` (which loads torch only for a predictor with torch
   weights) loads no torch or diffusers.
4. Layers: a package imports only packages of LOWER layers (lazy imports inside functions
   count too; ``if TYPE_CHECKING:`` imports do not). A package's ``__main__`` (the command
   dispatcher, its composition root) is exempt: it may wire in higher layers, as
   ``python -m dts_planner.eval metaworld --via ros`` needs the ROS driver.

Known violations are listed explicitly with their owner; the test fails when a new violation
appears AND when a known one disappears (delete it from the list then). The checker itself is
tested on a synthetic tree with planted violations.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Lowest first. A package may import its own modules and packages of lower layers only.
LAYERS: list[set[str]] = [
    {"common"},                              # shared helpers (no dts_planner imports)
    {"diffusion", "sim"},                    # sampler core; simulator wrapper
    {"models", "peers", "calibration"},      # video model; peer samplers; calibration files
    {"planning", "predictors"},              # model + sampler glue; action predictors
    {"data", "policy"},                      # demonstrations and datasets; closed-loop policy
    {"training", "eval", "bench"},           # commands
    {"calibrate"},                           # the calibration command (uses the benches)
    {"ros"},                                 # rclpy adapters
]
ROS_MODULES = ("rclpy", "rosidl", "launch", "launch_ros", "launch_testing", "cv_bridge",
               "message_filters", "rcl_interfaces", "builtin_interfaces", "ament_index_python")
ROS_SUFFIXES = ("_msgs", "_srvs", "_interfaces")
SIMULATOR = ("mujoco", "metaworld")
LIGHT_PACKAGES = ("data", "training")
#: Modules exempt from rule 2 because driving the simulator is their job.
SIMULATOR_COMMANDS = {"dts_planner.data.generate_metaworld"}
TORCH = ("torch", "diffusers")
#: Rule 3: modules whose import-time closure must not reach TORCH.
TORCH_FREE = {"dts_planner.ros.metaworld_bridge_node", "dts_planner.ros.action_predictor_node"}

#: Known violations (module: rule detail), each with the owner who removes it.
KNOWN_VIOLATIONS: set[str] = set()


@dataclass(frozen=True)
class Import:
    """One imported module name, and whether it runs at import time of the importing module."""

    name: str
    module_level: bool


def module_name(path: Path, root: Path) -> str:
    """Dotted module name of ``path`` under ``root`` (a package's __init__ is the package)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(path: Path, name: str, modules: set[str]) -> list[Import]:
    """Modules imported by the file (relative imports resolved; TYPE_CHECKING blocks skipped)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[Import] = []

    def visit(node: ast.AST, module_level: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child, module_level)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                found.extend(Import(".".join(parts[:i]), module_level)
                             for i in range(1, len(parts) + 1))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            parts = base.split(".")
            found.extend(Import(".".join(parts[:i]), module_level)
                         for i in range(1, len(parts) + 1))
            found.extend(Import(f"{base}.{alias.name}", module_level) for alias in node.names
                         if f"{base}.{alias.name}" in modules)
        inner = module_level and not isinstance(
            node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    visit(ast.parse(path.read_text(), str(path)), True)
    return found


def _package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "dts_planner" else None


def _is_ros(module: str) -> bool:
    top = module.split(".")[0]
    return top.startswith(ROS_MODULES) or top.endswith(ROS_SUFFIXES)


def violations(root: Path, layers: list[set[str]] = LAYERS) -> set[str]:
    """Return every violation in the ``dts_planner`` tree under ``root`` (one per module/rule)."""
    files = {module_name(path, root): path for path in (root / "dts_planner").rglob("*.py")}
    graph = {name: imports_of(path, name, set(files)) for name, path in files.items()}
    level = {package: index for index, members in enumerate(layers) for package in members}
    found: set[str] = set()
    for name, imports in graph.items():
        own = _package(name)
        ros = sorted({i.name.split(".")[0] for i in imports if _is_ros(i.name)})
        if ros and own != "ros":
            found.add(f"{name}: imports ROS ({', '.join(ros)})")
        for package in sorted({_package(i.name) for i in imports} - {None, own}):
            if own is None or name.endswith(".__main__"):
                continue
            if package not in level or own not in level:
                found.add(f"{name}: package {package if package not in level else own} "
                          "has no layer")
            elif level[package] >= level[own]:
                found.add(f"{name}: layer {own} imports "
                          f"{'higher' if level[package] > level[own] else 'same'} layer "
                          f"{package}")
        if own in LIGHT_PACKAGES and name not in SIMULATOR_COMMANDS:
            heavy = _import_path(name, graph, SIMULATOR)
            if heavy:
                found.add(f"{name}: loads the simulator at import time via {' -> '.join(heavy)}")
        if name in TORCH_FREE:
            heavy = _import_path(name, graph, TORCH)
            if heavy:
                found.add(f"{name}: loads torch at import time via {' -> '.join(heavy)}")
    return found


def _import_path(start: str, graph: dict[str, list[Import]], heavy: tuple[str, ...]
                 ) -> list[str]:
    """Import chain from ``start`` to a top-level package in ``heavy`` at import time, or []."""
    parents = {start: ""}
    queue = [start]
    while queue:
        module = queue.pop(0)
        parts = module.split(".")
        nexts = [".".join(parts[:i]) for i in range(1, len(parts))]        # package __init__s
        nexts += [i.name for i in graph.get(module, []) if i.module_level]
        for target in nexts:
            if target in parents:
                continue
            parents[target] = module
            if target.split(".")[0] in heavy:
                chain = [target]
                while parents[chain[-1]]:
                    chain.append(parents[chain[-1]])
                return chain[::-1]
            if target in graph:
                queue.append(target)
    return []


def test_the_layering_holds_except_for_the_known_violations():
    found = violations(ROOT)
    assert found - KNOWN_VIOLATIONS == set(), "new layering violations"
    assert KNOWN_VIOLATIONS - found == set(), "fixed: remove these from KNOWN_VIOLATIONS"


def test_every_package_has_a_layer():
    packages = {path.name for path in (ROOT / "dts_planner").iterdir()
                if (path / "__init__.py").is_file()}
    assert packages - {"weights"} <= set().union(*LAYERS), packages - set().union(*LAYERS)


PLANTED = {
    "dts_planner/diffusion/bad_up.py": ("from dts_planner.peers import x\n",
                                        "dts_planner.diffusion.bad_up: layer diffusion "
                                        "imports higher layer peers"),
    "dts_planner/models/bad_same.py": ("def f():\n    import dts_planner.peers.y\n",
                                       "dts_planner.models.bad_same: layer models imports "
                                       "same layer peers"),
    "dts_planner/planning/bad_ros.py": ("import rclpy\nfrom std_msgs.msg import Header\n",
                                        "dts_planner.planning.bad_ros: imports ROS (rclpy, "
                                        "std_msgs)"),
    "dts_planner/training/bad_heavy.py": ("from ..sim import heavy\n",
                                          "dts_planner.training.bad_heavy: loads the simulator "
                                          "at import time via dts_planner.training.bad_heavy "
                                          "-> dts_planner.sim.heavy -> mujoco"),
    "dts_planner/ros/metaworld_bridge_node.py": ("from dts_planner.ros import parameters\n",
                                                 "dts_planner.ros.metaworld_bridge_node: loads "
                                                 "torch at import time via dts_planner.ros."
                                                 "metaworld_bridge_node -> dts_planner.ros."
                                                 "parameters -> dts_planner.diffusion.core -> "
                                                 "torch"),
}
CLEAN = {
    "dts_planner/__init__.py": "",
    "dts_planner/sim/__init__.py": "",
    "dts_planner/sim/heavy.py": "import mujoco\n",
    "dts_planner/peers/__init__.py": "from dts_planner.diffusion import core\n",
    "dts_planner/peers/x.py": "", "dts_planner/peers/y.py": "",
    "dts_planner/diffusion/__init__.py": "", "dts_planner/diffusion/core.py": "import torch\n",
    "dts_planner/ros/__init__.py": "",
    "dts_planner/ros/parameters.py": "import rclpy\nfrom dts_planner.diffusion import core\n",
    "dts_planner/models/__init__.py": "", "dts_planner/planning/__init__.py": "",
    "dts_planner/training/__init__.py": "",
    "dts_planner/training/lazy.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                    "    from dts_planner.sim import heavy\n"
                                    "def run():\n    from dts_planner.sim import heavy\n",
}


def write_tree(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)


def test_the_checker_passes_a_clean_tree(tmp_path):
    write_tree(tmp_path, CLEAN)
    assert violations(tmp_path) == set()


@pytest.mark.parametrize("planted", sorted(PLANTED))
def test_the_checker_fails_on_a_planted_violation(tmp_path, planted):
    write_tree(tmp_path, CLEAN)
    text, message = PLANTED[planted]
    write_tree(tmp_path, {planted: text})
    assert violations(tmp_path) == {message}
