"""Shared helpers of the ROS graph tests: a tiny random-weight planner and input messages."""

from __future__ import annotations

from typing import Any

from builtin_interfaces.msg import Time as TimeMsg
from dts_msgs.msg import Instruction
import numpy as np
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from dts_planner.ros.image_conversion import rgb_to_image
from dts_planner.ros.planner_node import PlannerNode
from dts_planner.ros.spin import autostart

#: A small random-weight model and a 2-step DDIM: one plan takes milliseconds on a CPU.
TINY_PLANNER = {
    "device": "cpu", "model_preset": "default", "image_size": 16, "sampler": "ddim",
    "ddim.num_steps": 2, "warmup_runs": 1, "autostart": False, "replan_policy": "continuous",
}


def overrides(values: dict[str, Any]) -> list[Parameter]:
    """Turn a {name: value} dict into parameter overrides."""
    return [Parameter(name, value=value) for name, value in values.items()]


def start_planner(ros: Any, namespace: str, **params: Any) -> PlannerNode:
    """Start a tiny planner in `namespace`, spun by `ros` and activated (asserted)."""
    node = ros.add_node(PlannerNode(context=ros.context, namespace=namespace,
                                    parameter_overrides=overrides({**TINY_PLANNER, **params})))
    assert autostart(node)
    return node


def stamp(sec: int, nanosec: int = 0) -> TimeMsg:
    """Build a builtin_interfaces/Time."""
    return TimeMsg(sec=sec, nanosec=nanosec)


def camera_image(node: Any, age_s: float = 0.0, size: int = 24, seed: int = 0) -> Image:
    """Make a random rgb8 image stamped `age_s` before `node`'s clock now."""
    now = node.get_clock().now().nanoseconds - int(age_s * 1e9)
    header = Header(stamp=stamp(now // 10**9, now % 10**9), frame_id="camera_optical")
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), np.uint8)
    return rgb_to_image(pixels, header)


def instruction(text: str = "open the door") -> Instruction:
    """Make an Instruction for a Meta-World task."""
    return Instruction(text=text, task_id="door-open-v3")
