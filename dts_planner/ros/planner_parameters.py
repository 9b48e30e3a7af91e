"""The planner node's parameters: its `ParamSpec` list, sampler settings included.

The sampler parameters are generated from the sampler registry's settings classes
(`dts_planner.diffusion.settings_class`), so a registered sampler is a ROS choice with all of
its settings; this is why this module (unlike `dts_planner.ros.parameters`) loads the
diffusion stack. Defaults come from config/planner.yaml like every other parameter.
"""

from __future__ import annotations

from typing import Any, Mapping

from dts_planner.diffusion import (
    NoiseSchedule, SamplerSettings, sampler_names, settings_class, settings_from_flat)
import dts_planner.peers  # noqa: F401  (registers the peer samplers)
from dts_planner.ros import parameters
from dts_planner.ros.parameters import INT32_MAX, ParamSpec

SAMPLERS = tuple(sampler_names())
REPLAN_POLICIES = ("on_demand", "continuous", "periodic")
DTYPES = ("float32", "float16", "bfloat16")


def sampler_specs() -> tuple[ParamSpec, ...]:
    """`<sampler>.<setting>` parameters of every registered sampler (all runtime-tunable)."""
    return tuple(ParamSpec(info.key, info.description, info.bounds, info.choices, runtime=True)
                 for name in SAMPLERS for info in settings_class(name).parameters())


PLANNER_PARAMS = (
    parameters.AUTOSTART,
    ParamSpec("model_path", "video model checkpoint; empty = the embedded default model"),
    ParamSpec("model_preset", "architecture preset: with model_path, the config of a checkpoint"
              " that has none (AVDC releases: avdc_metaworld, avdc_thor, avdc_bridge); without"
              " model_path, a RANDOM-weight model (tests, benchmarks); empty = from checkpoint"),
    ParamSpec("text_encoder", "text encoder name; 'default' = the one the model was trained with"),
    ParamSpec("image_size", "square px of a model_preset model; 0 = the preset's own (for a "
              "checkpoint: 0 or its size)", (0, 256)),
    parameters.DEVICE,
    parameters.CPU_FALLBACK,
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
    parameters.IMAGE_RELIABILITY,
    ParamSpec("image_qos.depth", "camera subscription queue depth", (1, 100)),
    parameters.OUTPUT_DEPTH,
    parameters.DIAGNOSTICS_PERIOD,
    parameters.NO_INPUT_WARN,
    parameters.INVALID_WARN,
)


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
