"""Parameter specifications of the nodes; defaults come from config/planner.yaml.

Each node declares its parameters from a list of `ParamSpec` (description, choices, range,
read-only) with the default taken from the params file, so `config/planner.yaml` is the single
source of defaults and `ros2 param describe` shows what every parameter means.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping

from rcl_interfaces.msg import (
    FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult)
from rclpy.node import Node
from rclpy.parameter import Parameter
import yaml

import dts_planner.peers  # noqa: F401  (registers the peer samplers named in SAMPLERS)
from dts_planner.ros.qos import RELIABILITY_CHOICES

PACKAGE = "dts_planner"
BASE_SAMPLERS = ("dts", "ddim", "ddpm", "dpm_solver")
SAMPLERS = BASE_SAMPLERS + ("paradigms", "srds", "block_speculative")
_ZERO_MEANS_NONE = frozenset({"max_rounds", "num_segments", "max_iterations"})
REPLAN_POLICIES = ("on_demand", "continuous", "periodic")
DTYPES = ("float32", "float16", "bfloat16")
INT32_MAX = 2**31 - 1


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

    def descriptor(self, default: Any) -> ParameterDescriptor:
        """Build the ParameterDescriptor (type from `default`, ranges, read_only)."""
        text = self.description
        if self.choices:
            text += f" (one of: {', '.join(self.choices)})"
        desc = ParameterDescriptor(
            name=self.name, type=Parameter.Type.from_parameter_value(default).value,
            description=text, read_only=not self.runtime)
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
            return f"{self.name}='{value}' is not one of {', '.join(self.choices)}"
        if self.bounds is not None and not self.bounds[0] <= value <= self.bounds[1]:
            return f"{self.name}={value} outside [{self.bounds[0]}, {self.bounds[1]}]"
        return None


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

PLANNER_PARAMS = (
    _AUTOSTART,
    ParamSpec("model_path", "video model checkpoint; empty = the embedded default model"),
    ParamSpec("model_preset", "architecture preset: with model_path, the config of a checkpoint"
              " that has none (AVDC releases: avdc_metaworld, avdc_thor, avdc_bridge); without"
              " model_path, a RANDOM-weight model (tests, benchmarks); empty = from checkpoint"),
    ParamSpec("text_encoder", "text encoder name; 'default' = the one the model was trained with"),
    ParamSpec("image_size", "square px of a model_preset model; 0 = the preset's own (for a "
              "checkpoint: 0 or its size)", (0, 1024)),
    _DEVICE,
    _CPU_FALLBACK,
    ParamSpec("dtype", "compute dtype (autocast; weights stay float32); float16 needs CUDA",
              choices=DTYPES),
    ParamSpec("warmup_runs", "plans run on a blank image at activation", bounds=(0, 10)),
    ParamSpec("sampler", "diffusion sampler", choices=SAMPLERS, runtime=True),
    ParamSpec("seed", "noise seed per plan; -1 = fresh noise every plan", bounds=(-1, INT32_MAX),
              runtime=True),
    ParamSpec("dts.draft_stride", "DTS: train timesteps per draft step", (1, 100), runtime=True),
    ParamSpec("dts.target_stride", "DTS: train timesteps per target step", (1, 100),
              runtime=True),
    ParamSpec("dts.chunk", "DTS: draft tokens verified per round", (1, 100), runtime=True),
    ParamSpec("dts.threshold", "DTS: acceptance distance threshold of the first round, in the "
              "units of dts.distance; 0 = always reject (sequential fine DDIM)", (0.0, 1e9),
              runtime=True),
    ParamSpec("dts.increment", "DTS: threshold increment per round (units of dts.distance)",
              (0.0, 1e3), runtime=True),
    ParamSpec("dts.distance", "DTS: draft-target distance", choices=("l2", "rms"), runtime=True),
    ParamSpec("dts.progression", "DTS: threshold progression",
              choices=("linear", "cumulative"), runtime=True),
    ParamSpec("dts.max_rounds", "DTS: round limit; 0 = no limit", (0, 1000), runtime=True),
    ParamSpec("dts.reuse_draft_outputs", "DTS: reuse the draft's model outputs in the target",
              runtime=True),
    ParamSpec("ddim.num_steps", "DDIM: denoising steps", (1, 1000), runtime=True),
    ParamSpec("dpm_solver.num_steps", "DPM-Solver++: solver steps", (1, 1000), runtime=True),
    ParamSpec("dpm_solver.order", "DPM-Solver++: solver order", (1, 3), runtime=True),
    ParamSpec("ddpm.clip_x0", "DDPM: clip the predicted clean sample to [-1, 1]", runtime=True),
    ParamSpec("paradigms.num_steps", "ParaDiGMS: steps of the sequential sampler it solves",
              (1, 100), runtime=True),
    ParamSpec("paradigms.window", "ParaDiGMS: Picard window (steps per batched call)", (1, 100),
              runtime=True),
    ParamSpec("paradigms.tolerance", "ParaDiGMS: per-element tolerance relative to sigma_t",
              (0.0, 1e3), runtime=True),
    ParamSpec("paradigms.kind", "ParaDiGMS: sequential sampler it solves",
              choices=("ddim", "ddpm"), runtime=True),
    ParamSpec("srds.num_steps", "SRDS: steps of the fine DDIM solution", (1, 100), runtime=True),
    ParamSpec("srds.num_segments", "SRDS: coarse segments; 0 = sqrt(num_steps)", (0, 100),
              runtime=True),
    ParamSpec("srds.max_iterations", "SRDS: parareal iterations; 0 = until converged", (0, 100),
              runtime=True),
    ParamSpec("srds.tolerance", "SRDS: early-stop change of the final sample (image units)",
              (0.0, 1e3), runtime=True),
    ParamSpec("block_speculative.tau", "block speculative: router acceptance score (dB)",
              (-1e3, 1e3), runtime=True),
    ParamSpec("block_speculative.num_blocks", "block speculative: blocks of frames per plan",
              (1, 16), runtime=True),
    ParamSpec("block_speculative.draft_steps", "block speculative: DDIM steps of the drafter",
              (1, 100), runtime=True),
    ParamSpec("block_speculative.target", "block speculative: target sampler (its own "
              "parameters apply)", choices=BASE_SAMPLERS, runtime=True),
    ParamSpec("block_speculative.probe_t", "block speculative: noise level of the router probe",
              (1, 99), runtime=True),
    ParamSpec("replan_policy", "when to plan", choices=REPLAN_POLICIES, runtime=True),
    ParamSpec("replan_period_s", "s between plans for replan_policy=periodic", (0.01, 3600.0),
              runtime=True),
    ParamSpec("max_image_age_s", "s; older frames are dropped and counted", (0.001, 3600.0),
              runtime=True),
    ParamSpec("frame_dt_s", "s between imagined frames (VideoPlan.frame_dt)", (1e-4, 3600.0),
              runtime=True),
    _IMAGE_RELIABILITY,
    ParamSpec("image_qos.depth", "camera subscription queue depth", (1, 100)),
    _OUTPUT_DEPTH,
    _DIAGNOSTICS_PERIOD,
    _NO_INPUT_WARN,
)

PREDICTOR_PARAMS = (
    _AUTOSTART,
    _DEVICE,
    _CPU_FALLBACK,
    _IMAGE_RELIABILITY,
    _OUTPUT_DEPTH,
    _DIAGNOSTICS_PERIOD,
    _NO_INPUT_WARN,
    ParamSpec("predictor.type", "action predictor", choices=("optical_flow", "diffusion_policy")),
    ParamSpec("predictor.mode", "robot kind", choices=("manipulation", "navigation")),
    ParamSpec("predictor.checkpoint_path",
              "diffusion-policy checkpoint; empty = the embedded default"),
    ParamSpec("predictor.frame_id", "frame_id of the published ActionChunk", runtime=True),
    ParamSpec("predictor.max_plan_age_s", "s; plans with an older source image are not followed",
              (0.01, 3600.0), runtime=True),
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
    ParamSpec("sim.wait_for_actions",
              "pause when out of actions and publish the camera once per chunk (lockstep)",
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


def declare(node: Node, specs: Iterable[ParamSpec]) -> None:
    """Declare `specs` on `node` with descriptors and defaults from config/planner.yaml."""
    defaults = load_defaults()
    node.declare_parameters("", [
        (spec.name, defaults[spec.name], spec.descriptor(defaults[spec.name])) for spec in specs])


def current(node: Node, specs: Iterable[ParamSpec]) -> dict[str, Any]:
    """Return the current values {name: value} of `specs` on `node`."""
    return {spec.name: node.get_parameter(spec.name).value for spec in specs}


def check_values(specs: Iterable[ParamSpec], values: Mapping[str, Any]) -> list[str]:
    """Reasons why `values` are not accepted (empty when all are); unknown names are ignored."""
    by_name = {spec.name: spec for spec in specs}
    return [reason for name, value in values.items() if name in by_name
            for reason in [by_name[name].check(value)] if reason]


def sampler_kwargs(values: Mapping[str, Any], sampler: str | None = None) -> dict[str, Any]:
    """Keyword arguments of `make_sampler` for `sampler` (default values['sampler']).

    They come from its `<sampler>.*` values (0 = None for limits and automatic counts); the
    block speculative sampler also gets the parameters of its target sampler.
    """
    name = sampler or values["sampler"]
    prefix = f"{name}."
    kwargs = {key[len(prefix):]: value for key, value in values.items()
              if key.startswith(prefix)}
    for key in _ZERO_MEANS_NONE & kwargs.keys():
        if kwargs[key] == 0:
            kwargs[key] = None
    if name == "block_speculative":
        kwargs.update(sampler_kwargs(values, kwargs["target"]))
    return kwargs


def result(reasons: list[str]) -> SetParametersResult:
    """Reject with the joined reasons, or accept when there are none."""
    return SetParametersResult(successful=not reasons, reason="; ".join(reasons))
