"""launch_testing: `planner.launch.py sim:=true` closes the loop (skipped without launch_testing).

launch/launch_ros/launch_testing are not pip-installable here; on a ROS 2 system `colcon test`
(or `launch_test test/test_ros_launch.py`) runs this against the installed package. A tiny
random-weight model keeps it fast: the check is the wiring, not plan quality.
"""

from __future__ import annotations

import os
from pathlib import Path
import tempfile
import unittest

import pytest

launch_testing = pytest.importorskip("launch_testing", reason="launch_testing is not installed")
launch_testing_ros = pytest.importorskip("launch_testing_ros")

from dts_msgs.msg import ActionChunk, EpisodeStatus, VideoPlan  # noqa: E402
from launch import LaunchDescription  # noqa: E402
from launch.actions import IncludeLaunchDescription  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402
import launch_testing.actions  # noqa: E402
import launch_testing.asserts  # noqa: E402
from launch_testing_ros import WaitForTopics  # noqa: E402
import yaml  # noqa: E402

from dts_planner.ros.parameters import default_params_file  # noqa: E402

LAUNCH_FILE = Path(__file__).resolve().parents[1] / "launch" / "planner.launch.py"
NAMESPACE = "launch_test"
TINY = {"model_preset": "default", "image_size": 16, "sampler": "ddim", "ddim": {"num_steps": 2},
        "sim": {"max_steps": 20, "rate_hz": 100.0, "resolution": 32}}


def tiny_params_file() -> str:
    """Write the package's params file with a tiny random-weight model to a temp file."""
    with open(default_params_file(), encoding="utf-8") as stream:
        document = yaml.safe_load(stream)
    params = document["/**"]["ros__parameters"]
    for key, value in TINY.items():
        if isinstance(value, dict):
            params[key].update(value)
        else:
            params[key] = value
    handle, path = tempfile.mkstemp(suffix=".yaml", prefix="dts_launch_test_")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        yaml.safe_dump(document, out)
    return path


@pytest.mark.launch_test
def generate_test_description() -> LaunchDescription:
    """Planner, action predictor and Meta-World bridge from the launch file, on the CPU."""
    include = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(LAUNCH_FILE)),
        launch_arguments={"sim": "true", "device": "cpu", "namespace": NAMESPACE,
                          "params_file": tiny_params_file()}.items())
    return LaunchDescription([include, launch_testing.actions.ReadyToTest()])


class TestClosedLoop(unittest.TestCase):
    """While the nodes run."""

    def test_plan_actions_and_episode_status_flow(self) -> None:
        """The pipeline publishes plans, action chunks and episode status in the namespace."""
        topics = [(f"/{NAMESPACE}/plan", VideoPlan), (f"/{NAMESPACE}/actions", ActionChunk),
                  (f"/{NAMESPACE}/episode_status", EpisodeStatus)]
        with WaitForTopics(topics, timeout=180.0) as wait:
            self.assertEqual(wait.topics_not_received(), set())


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):
    """After the nodes were stopped."""

    def test_clean_exit(self, proc_info) -> None:
        """Every node exits cleanly on SIGINT."""
        launch_testing.asserts.assertExitCodes(proc_info)
