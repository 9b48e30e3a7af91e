"""Parameter specifications of the nodes; defaults come from config/planner.yaml.

Each node declares its parameters from a list of `ParamSpec` (description, choices, range,
read-only) with the default taken from the params file, so `config/planner.yaml` is the single
source of defaults and `ros2 param describe` shows what every parameter means. The sampler
parameters (`<sampler>.<setting>`) are generated from the sampler registry's settings classes
(`dts_planner.diffusion.settings_class`), so a registered sampler is a ROS choice with all of
its settings. docs/ros_interface.md's tables are generated from these lists
(`python -m dts_planner.ros.interface_docs`).
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

from dts_planner.diffusion import (
    NoiseSchedule, SamplerSettings, sampler_names, settings_class, settings_from_flat)
import dts_planner.peers  # noqa: F401  (registers the peer samplers)
from dts_planner.predictors import PLAN_KINDS
from dts_planner.ros.qos import RELIABILITY_CHOICES

PACKAGE = "dts_planner"
SAMPLERS = tuple(sampler_names())
REPLAN_POLICIES = ("on_demand", "continuous", "periodic")
DTYPES = ("float32", "float16", "bfloat16")
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


def sampler_specs() -> tuple[ParamSpec, ...]:
    """`<sampler>.<setting>` parameters of every registered sampler (all runtime-tunable)."""
    return tuple(ParamSpec(info.key, info.description, info.bounds, info.choices, runtime=True)
                 for name in SAMPLERS for info in settings_class(name).parameters())


_AUTOSTART = ParamSpec(
    "autostart", "configure and activate on start-up, without a lifecycle manager")
_DEVICE = ParamSpec("device", "torch device, e.g. cuda:0, cuda:1 or cpu")
_CPU_FALLBACK = ParamSpec(
    "allow_cpu_fallback", "run on the CPU (with a WARN) when CUDA is asked for but absent")
_IMAGE_RELIABILITY = ParamSpec(
    "image_qos.reliability", "camera subscription reliability", choices=RELIABILITY_CHOICES)
_OUTPUT_DEPTH = ParamSpec("output_qos_depth", "queue depth of the RELIABLE outputs", (1, 1000))
_DIAGNOSTICS_PERIOD = ParamSpec(
    "diagnostics_period_s", "s between /diagnostics messages", (0.1, 60.0))
_NO_INPUT_WARN = ParamSpec("no_input_warn_s", "s without input before /diagnostics turns WARN",
                           (0.1, 3600.0), runtime=True)
_INVALID_WARN = ParamSpec(
    "invalid_input_warn_fraction", "/diagnostics turns WARN when more than this fraction of the "
    "input messages of the last 10 s were dropped as invalid", (0.0, 1.0), runtime=True)

PLANNER_PARAMS = (
    _AUTOSTART,
    ParamSpec("model_path", "video model checkpoint; empty = the embedded default model"),
    ParamSpec("model_preset", "architecture preset: with model_path, the config of a checkpoint"
              " that has none (AVDC releases: avdc_metaworld, avdc_thor, avdc_bridge); without"
              " model_path, a RANDOM-weight model (tests, benchmarks); empty = from checkpoint"),
    ParamSpec("text_encoder", "text encoder name; 'default' = the one the model was trained with"),
    ParamSpec("image_size", "square px of a model_preset model; 0 = the preset's own (for a "
              "checkpoint: 0 or its size)", (0, 256)),
    _DEVICE,
    _CPU_FALLBACK,
    ParamSpec("dtype", "compute dtype (autocast; weights stay float32); float16 needs CUDA",
              choices=DTYPES),
    ParamSpec("warmup_runs", "plans run on a blank image at activation", bounds=(0, 10)),
    ParamSpec("sampler", "diffusion sampler", choices=SAMPLERS, runtime=True),
    ParamSpec("seed", "noise seed per plan; -1 = fresh noise every plan (a request_plan call "
              "with its own seed overrides it)", bounds=(-1, INT32_MAX), runtime=True),
    *sampler_specs(),
    ParamSpec("latency_budget_s", "s; > 0: each plan uses the calibrated configuration with "
              "the best fidelity whose predicted time fits this budget (needs a calibration "
              "file of the model); 0 = off: the sampler parameters", (0.0, 3600.0),
              runtime=True),
    ParamSpec("calibration_dir", "directory searched first for the model's calibration file "
              "(python -m dts_planner.calibrate); empty = next to the checkpoint only"),
    ParamSpec("replan_policy", "when to plan: on_demand = on request_plan calls; continuous = "
              "every fresh frame once the previous plan is done; periodic = every "
              "replan_period_s", choices=REPLAN_POLICIES, runtime=True),
    ParamSpec("replan_period_s", "s between plans for replan_policy=periodic", (0.01, 3600.0),
              runtime=True),
    ParamSpec("max_image_age_s", "s; frames older than this when planning starts are dropped "
              "and counted (a frame is some ms old by then: at least 0.05)", (0.05, 3600.0),
              runtime=True),
    ParamSpec("max_stamp_future_s", "s; frames stamped further than this in the future (and "
              "frames with negative stamps) are dropped and counted", (0.0, 3600.0),
              runtime=True),
    ParamSpec("frame_dt_s", "s between imagined frames (VideoPlan.frame_dt)", (1e-4, 3600.0),
              runtime=True),
    _IMAGE_RELIABILITY,
    ParamSpec("image_qos.depth", "camera subscription queue depth", (1, 100)),
    _OUTPUT_DEPTH,
    _DIAGNOSTICS_PERIOD,
    _NO_INPUT_WARN,
    _INVALID_WARN,
)

PREDICTOR_PARAMS = (
    _AUTOSTART,
    _DEVICE,
    _CPU_FALLBACK,
    _IMAGE_RELIABILITY,
    _OUTPUT_DEPTH,
    _DIAGNOSTICS_PERIOD,
    _NO_INPUT_WARN,
    _INVALID_WARN,
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

ALL_PARAMS = {spec.name: spec for specs in (PLANNER_PARAMS, PREDICTOR_PARAMS, BRIDGE_PARAMS)
              for spec in specs}
"""Every parameter of the package's nodes by name (the shared params file holds them all)."""


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
    unknown = sorted(name for name in overrides if name not in ALL_PARAMS
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


def sampler_settings(values: Mapping[str, Any], name: str | None = None) -> SamplerSettings:
    """Build the settings of sampler `name` (default values['sampler']) from flat values."""
    return settings_from_flat(name or values["sampler"], values)


def sampler_reasons(values: Mapping[str, Any], schedule: NoiseSchedule) -> list[str]:
    """Why the settings of ANY registered sampler in `values` cannot plan with `schedule`."""
    reasons = []
    for name in SAMPLERS:
        try:
            reasons += sampler_settings(values, name).validate(schedule)
        except ValueError as error:
            reasons.append(str(error))
    return list(dict.fromkeys(reasons))   # block_speculative repeats its target's reasons


def result(reasons: list[str]) -> SetParametersResult:
    """Reject with the joined reasons, or accept when there are none."""
    return SetParametersResult(successful=not reasons, reason="; ".join(reasons))
