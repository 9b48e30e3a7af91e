"""The launch arguments of `planner.launch.py` and the parameters they override (no launch here).

Kept in the package, apart from the launch file, so the mapping from arguments to node
parameters is unit-tested where `launch` is not installed; the launch file only wires it up.
An empty argument keeps the params file's value.
"""

from __future__ import annotations

from typing import Any, Mapping

from dts_planner.predictors import PLAN_KINDS

#: (name, default, description, choices or None)
ARGUMENTS: tuple[tuple[str, str, str, list[str] | None], ...] = (
    ("namespace", "", "namespace of all nodes (one per camera/robot)", None),
    ("use_sim_time", "false", "use the /clock topic as time source", ["true", "false"]),
    ("params_file", "", "parameters YAML (empty: the package's config/planner.yaml)", None),
    ("log_level", "info", "log level of the nodes",
     ["debug", "info", "warn", "error", "fatal"]),
    ("device", "", "torch device, e.g. cuda:0 or cpu (empty: params_file value)", None),
    ("allow_cpu_fallback", "", "run on the CPU with a warning when the CUDA device is absent "
     "(empty: params_file value)", ["", "true", "false"]),
    ("model_path", "", "video model checkpoint (empty: params_file value; there, empty = the "
     "embedded default)", None),
    ("camera_topic", "image", "camera image topic (sensor_msgs/Image)", None),
    ("depth_topic", "depth", "depth image topic, 32FC1 m or 16UC1 mm", None),
    ("camera_info_topic", "camera_info", "sensor_msgs/CameraInfo topic of the camera", None),
    ("instruction_topic", "instruction", "dts_msgs/Instruction topic", None),
    ("action_predictor", "", f"{', '.join(PLAN_KINDS)} (empty: params_file value)",
     ["", *PLAN_KINDS]),
    ("sim", "false", "also start the Meta-World bridge (simulated arm and camera); the action "
     "predictor then takes its episodes from the bridge", ["true", "false"]),
    ("autostart", "", "configure + activate the lifecycle nodes on start (empty: params_file "
     "value)", ["", "true", "false"]),
    ("respawn", "false", "restart a node that exits", ["true", "false"]),
    ("dds_profile", "default", "Fast DDS profile for camera-size frames: 'default' = the "
     "package's config/fastdds_large_frames.xml unless FASTDDS_DEFAULT_PROFILES_FILE is set; "
     "a path; or '' to leave the environment alone", None),
)

_BOOLEANS = {"true": True, "false": False}


def parameter_overrides(values: Mapping[str, str]) -> dict[str, Any]:
    """Node parameters set by the evaluated launch arguments `values` (name -> text)."""
    overrides: dict[str, Any] = {"use_sim_time": _BOOLEANS[values["use_sim_time"]]}
    for argument, parameter in (("device", "device"), ("model_path", "model_path"),
                                ("action_predictor", "predictor.type")):
        if values[argument]:
            overrides[parameter] = values[argument]
    for argument in ("autostart", "allow_cpu_fallback"):
        if values[argument]:
            overrides[argument] = _BOOLEANS[values[argument]]
    if values["sim"] == "true":
        overrides["predictor.episode_source"] = "simulator"
    return overrides
