"""Parameter machinery of the nodes and the action predictor's and bridge's specifications.

Each node declares its parameters from a list of `ParamSpec` (description, choices, range,
read-only) with the default taken from the params file, so `config/planner.yaml` is the single
source of defaults and `ros2 param describe` shows what every parameter means. The planner's
list, with the sampler parameters generated from the sampler registry, is in
`dts_planner.ros.planner_parameters`; this module loads no torch, so the Meta-World bridge
starts without the diffusion stack. docs/ros_interface.md's tables are generated from these
lists (`python -m dts_planner.ros.interface_docs`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
import math
from pathlib import Path
from typing import Any, Iterable, Mapping

from rcl_interfaces.msg import (
    FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult)
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.node import Node
from rclpy.parameter import Parameter
import yaml

from dts_planner.predictors import PLAN_KINDS
from dts_planner.ros.qos import RELIABILITY_CHOICES

PACKAGE = "dts_planner"
EPISODE_SOURCES = ("instruction", "simulator")
INT32_MAX = 2**31 - 1
#: Parameters rclpy declares on every node; overrides of them are not typos.
_RCLPY_PARAMETERS = ("use_sim_time", "start_type_description_service")


class ParameterError(ValueError):
    """A start-up parameter value the node cannot take; the message is one line for the user."""


def _number(value: float) -> str:
    """Format a bound: integers in full (2147483647), other numbers short (1e+09, 0.05)."""
    if float(value).is_integer() and abs(value) < 1e6 or isinstance(value, int):
        return str(int(value))
    return f"{value:g}"


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: name, meaning, accepted values; the default lives in the params file.

    bounds: inclusive (low, high) for numbers (None: unbounded); choices: accepted strings.
    runtime: may be changed while the node runs (else read-only).
    """

    name: str
    description: str
    bounds: tuple[float, float] | None = None
    choices: tuple[str, ...] = ()
    runtime: bool = False

    def allowed(self) -> str:
        """Describe the accepted values in words, e.g. 'one of: a, b' or 'in [0, 1]'."""
        if self.choices:
            return f"one of: {', '.join(self.choices)}"
        if self.bounds is not None:
            return f"in [{_number(self.bounds[0])}, {_number(self.bounds[1])}]"
        return "any value of its type"

    def descriptor(self, default: Any) -> ParameterDescriptor:
        """Build the ParameterDescriptor (type from `default`, ranges, choices, read_only)."""
        text = self.description
        if self.choices:
            text += f" (one of: {', '.join(self.choices)})"
        desc = ParameterDescriptor(
            name=self.name, type=Parameter.Type.from_parameter_value(default).value,
            description=text, read_only=not self.runtime,
            additional_constraints=self.allowed() if (self.choices or self.bounds) else "")
        if self.bounds is not None and isinstance(default, bool):
            raise TypeError(f"{self.name}: bounds on a bool parameter")
        if self.bounds is not None and isinstance(default, int):
            desc.integer_range = [IntegerRange(
                from_value=int(self.bounds[0]), to_value=int(self.bounds[1]), step=1)]
        elif self.bounds is not None:
            desc.floating_point_range = [FloatingPointRange(
                from_value=float(self.bounds[0]), to_value=float(self.bounds[1]), step=0.0)]
        return desc

    def check(self, value: Any) -> str | None:
        """Reason why `value` is not accepted, or None (ranges are also enforced by rclpy)."""
        if self.choices and value not in self.choices:
            return f"{self.name}='{value}' is not {self.allowed()}"
        if self.bounds is not None and not (
                isinstance(value, (int, float)) and not math.isnan(value)
                and self.bounds[0] <= value <= self.bounds[1]):
            return f"{self.name}={value} is not {self.allowed()}"
        return None


# Specifications shared by the planner (planner_parameters) and the action predictor.
AUTOSTART = ParamSpec(
    "autostart", "configure and activate on start-up, without a lifecycle manager")
DEVICE = ParamSpec("device", "torch device, e.g. cuda:0, cuda:1 or cpu")
CPU_FALLBACK = ParamSpec(
    "allow_cpu_fallback", "run on the CPU (with a WARN) when CUDA is asked for but absent")
IMAGE_RELIABILITY = ParamSpec(
    "image_qos.reliability", "camera subscription reliability", choices=RELIABILITY_CHOICES)
OUTPUT_DEPTH = ParamSpec("output_qos_depth", "queue depth of the RELIABLE outputs", (1, 1000))
DIAGNOSTICS_PERIOD = ParamSpec(
    "diagnostics_period_s", "s between /diagnostics messages", (0.1, 60.0))
NO_INPUT_WARN = ParamSpec("no_input_warn_s", "s without input before /diagnostics turns WARN",
                          (0.1, 3600.0), runtime=True)
INVALID_WARN = ParamSpec(
    "invalid_input_warn_fraction", "/diagnostics turns WARN when more than this fraction of the "
    "input messages of the last 10 s were dropped as invalid", (0.0, 1.0), runtime=True)

PREDICTOR_PARAMS = (
    AUTOSTART,
    DEVICE,
    CPU_FALLBACK,
    IMAGE_RELIABILITY,
    OUTPUT_DEPTH,
    DIAGNOSTICS_PERIOD,
    NO_INPUT_WARN,
    INVALID_WARN,
    ParamSpec("predictor.type", "action predictor", choices=PLAN_KINDS),
    ParamSpec("predictor.mode", "robot kind", choices=("manipulation", "navigation")),
    ParamSpec("predictor.checkpoint_path",
              "diffusion-policy checkpoint; empty = the embedded default"),
    ParamSpec("predictor.frame_id", "frame_id of the published ActionChunk", runtime=True),
    ParamSpec("predictor.max_plans", "plans per episode (AVDC: 6 = the first and 5 replans); "
              "0 = no limit", (0, 1000)),
    ParamSpec("predictor.max_plan_age_s", "s; a plan whose source image is older than this at "
              "an observation is replaced", (0.01, 3600.0)),
    ParamSpec("predictor.episode_source", "what starts an episode: instruction = a new "
              "instruction text (real robots); simulator = a reset on episode_status (the "
              "Meta-World bridge; its seed makes the plans repeatable)", choices=EPISODE_SOURCES),
    ParamSpec("predictor.sync_slop_s", "s; colour, depth, mask and hand position stamped this "
              "close together form one observation", (0.0, 1.0)),
    ParamSpec("predictor.linear_speed", "m/s of a MoveAhead command on cmd_vel", (0.0, 5.0),
              runtime=True),
    ParamSpec("predictor.angular_speed", "rad/s of a turn command on cmd_vel", (0.0, 10.0),
              runtime=True),
    ParamSpec("predictor.plan_timeout_s", "s; a plan request with no plan this long after it "
              "is sent again (a lost answer, a restarted planner); 0.5 s apart at least; 0 = "
              "wait forever", (0.0, 3600.0), runtime=True),
    ParamSpec("predictor.command_duration_s", "s each navigation command runs on cmd_vel "
              "(a MoveAhead goes linear_speed x this); the dt of its ActionChunk", (0.05, 10.0),
              runtime=True),
)

BRIDGE_PARAMS = (
    ParamSpec("sim.task", "Meta-World v3 task name, e.g. door-open-v3"),
    ParamSpec("sim.camera", "Meta-World camera name"),
    ParamSpec("sim.seed", "seed of the first episode (episode i uses seed + i)", (0, INT32_MAX)),
    ParamSpec("sim.resolution", "square image size in px", (16, 1024)),
    ParamSpec("sim.rate_hz", "simulation steps per second", (0.1, 1000.0), runtime=True),
    ParamSpec("sim.max_steps", "steps before an episode times out", (1, 100000), runtime=True),
    ParamSpec("sim.episodes", "episodes to run, then stop stepping; 0 = run until shut down",
              (0, 1000000)),
    ParamSpec("sim.wait_for_actions",
              "pause when out of actions and publish the camera once per chunk (lockstep)",
              runtime=True),
    ParamSpec("sim.republish_period_s", "s; lockstep: re-publish the paused state's camera "
              "this often while waiting for actions (late joiners)", (0.01, 3600.0),
              runtime=True),
    ParamSpec("sim.frame_id", "frame_id of the camera image, depth and CameraInfo"),
)


def default_params_file() -> Path:
    """config/planner.yaml: the source tree's copy if present, else the installed share copy."""
    source = Path(__file__).resolve().parents[2] / "config" / "planner.yaml"
    if source.is_file():
        return source
    from ament_index_python.packages import get_package_share_directory
    return Path(get_package_share_directory(PACKAGE)) / "config" / "planner.yaml"


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten {'a': {'b': 1}} to {'a.b': 1}, as ROS parameter files nest names."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


@lru_cache(maxsize=None)
def load_defaults(path: Path | None = None) -> dict[str, Any]:
    """Flat {name: default} from the `/**: ros__parameters:` section of a params file."""
    with open(path or default_params_file(), encoding="utf-8") as stream:
        document = yaml.safe_load(stream)
    return _flatten(document["/**"]["ros__parameters"])


def _overrides(node: Node) -> dict[str, Parameter]:
    """Start-up values given to `node` (params files, -p, parameter_overrides).

    rclpy keeps them in a private attribute; this is its only reader.
    """
    return dict(getattr(node, "_parameter_overrides", {}))


def declare(node: Node, specs: Iterable[ParamSpec]) -> None:
    """Declare `specs` with descriptors and defaults from config/planner.yaml.

    A start-up value rclpy refuses (type or range) raises ParameterError with one line that
    names the parameter, the value and what is accepted. Overrides that no node of this package
    declares (typos in a params file) are logged as warnings.
    """
    defaults = load_defaults()
    overrides = _overrides(node)
    for spec in specs:
        default = defaults[spec.name]
        given = overrides[spec.name].value if spec.name in overrides else default
        try:
            node.declare_parameter(spec.name, default, spec.descriptor(default))
            refused = spec.check(given) is not None     # choices: rclpy does not check them
        except (InvalidParameterTypeException, InvalidParameterValueException):
            refused = True
        if refused:
            kind = type(default).__name__.replace("str", "string").replace("bool", "boolean")
            raise ParameterError(
                f"parameter {spec.name}={given!r} refused: must be a {kind} {spec.allowed()}; "
                f"restart the node with a valid value")
    unknown = sorted(name for name in overrides if name not in defaults
                     and name not in _RCLPY_PARAMETERS and not name.startswith("qos_overrides."))
    for name in unknown:
        node.get_logger().warning(f"unknown parameter '{name}' ignored (a typo? `ros2 param "
                                  f"list {node.get_fully_qualified_name()}` lists the known ones)")


def current(node: Node, specs: Iterable[ParamSpec]) -> dict[str, Any]:
    """Return the current values {name: value} of `specs` on `node`."""
    return {spec.name: node.get_parameter(spec.name).value for spec in specs}


def check_values(specs: Iterable[ParamSpec], values: Mapping[str, Any]) -> list[str]:
    """Reasons why `values` are not accepted (empty when all are); unknown names are ignored."""
    by_name = {spec.name: spec for spec in specs}
    return [reason for name, value in values.items() if name in by_name
            for reason in [by_name[name].check(value)] if reason]


def result(reasons: list[str]) -> SetParametersResult:
    """Reject with the joined reasons, or accept when there are none."""
    return SetParametersResult(successful=not reasons, reason="; ".join(reasons))
