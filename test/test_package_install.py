"""The colcon-built workspace registers dts_planner and dts_msgs and installs their files."""

from __future__ import annotations

import filecmp
import os
from pathlib import Path

import pytest

ament = pytest.importorskip("ament_index_python.packages",
                            reason="ROS environment not sourced (scripts/env.sh)")
REPO = Path(__file__).resolve().parents[1]
CONSOLE_SCRIPTS = ["planner_node", "action_predictor_node", "metaworld_bridge_node", "dts-demo"]
REBUILD = "installed workspace is out of date: run `bash scripts/setup.sh`"


def _sources(pattern: str) -> list[Path]:
    return sorted(p for p in REPO.glob(pattern) if p.is_file())


def test_packages_registered_in_ament_index() -> None:
    packages = ament.get_packages_with_prefixes()
    assert "dts_planner" in packages, REBUILD
    assert "dts_msgs" in packages, REBUILD
    assert Path(packages["dts_planner"]).name == "dts_planner"


def test_dts_msgs_is_an_interface_package() -> None:
    from ament_index_python.resources import get_resource

    content, _ = get_resource("rosidl_interfaces", "dts_msgs")
    interfaces = set(content.split())
    for name in ["Instruction", "PlanDiagnostics", "VideoPlan", "ActionChunk", "EpisodeStatus"]:
        assert f"msg/{name}.msg" in interfaces, REBUILD


def test_package_xml_installed_and_valid() -> None:
    from catkin_pkg.package import parse_package

    share = Path(ament.get_package_share_directory("dts_planner"))
    pkg = parse_package(str(share / "package.xml"))
    assert pkg.name == "dts_planner" and pkg.package_format == 3
    assert pkg.get_build_type() == "ament_python"
    run_deps = {d.name for d in pkg.exec_depends}
    assert {"rclpy", "sensor_msgs", "dts_msgs", "python3-numpy", "python3-opencv"} <= run_deps


@pytest.mark.parametrize("kind, pattern, required", [
    ("launch", "launch/*.launch.py", "planner.launch.py"),
    ("config", "config/*.yaml", "planner.yaml"),
])
def test_launch_and_config_installed(kind: str, pattern: str, required: str) -> None:
    share = Path(ament.get_package_share_directory("dts_planner")) / kind
    sources = _sources(pattern)
    assert required in {p.name for p in sources}, f"{kind}/{required} missing in the source tree"
    for src in sources:
        installed = share / src.name
        assert installed.is_file(), f"{installed} not installed; {REBUILD}"
        assert filecmp.cmp(src, installed, shallow=False), f"{installed} differs; {REBUILD}"


@pytest.mark.parametrize("script", CONSOLE_SCRIPTS)
def test_console_scripts_installed(script: str) -> None:
    prefix = Path(ament.get_package_prefix("dts_planner"))
    exe = prefix / "lib" / "dts_planner" / script
    assert exe.is_file() and os.access(exe, os.X_OK), f"{exe} missing; {REBUILD}"


def test_python_package_comes_from_source_tree() -> None:
    import dts_planner

    assert Path(dts_planner.__file__).resolve().parent == REPO / "dts_planner"
