"""Bring up the dts_planner pipeline: planner -> action predictor (-> Meta-World bridge).

    ros2 launch dts_planner planner.launch.py device:=cuda:0 camera_topic:=/camera/color/image_raw
    ros2 launch dts_planner planner.launch.py sim:=true device:=cpu          # simulated arm

Parameters come from `params_file` (default: the package's config/planner.yaml); the arguments
device, model_path, autostart and action_predictor override it only when given (empty = keep
the file's value). Topic arguments remap the nodes' relative names, so several pipelines run
side by side under different namespaces. No network or package-manager steps.
"""

from launch import LaunchContext, LaunchDescription
from launch.actions import (
    DeclareLaunchArgument, GroupAction, OpaqueFunction, SetEnvironmentVariable)
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode, Node, PushRosNamespace
from launch_ros.descriptions import ParameterFile
from launch_ros.substitutions import FindPackageShare

PACKAGE = "dts_planner"

#: (name, default, description, choices or None)
ARGUMENTS = (
    ("namespace", "", "namespace of all nodes (one per camera/robot)", None),
    ("use_sim_time", "false", "use the /clock topic as time source", ["true", "false"]),
    ("params_file", "", "parameters YAML (empty: the package's config/planner.yaml)", None),
    ("log_level", "info", "log level of the nodes",
     ["debug", "info", "warn", "error", "fatal"]),
    ("device", "", "torch device, e.g. cuda:0 or cpu (empty: params_file value)", None),
    ("model_path", "", "video model checkpoint (empty: params_file value; there, empty = the "
     "embedded default)", None),
    ("camera_topic", "image", "camera image topic (sensor_msgs/Image)", None),
    ("depth_topic", "depth", "depth image topic, 32FC1 m or 16UC1 mm", None),
    ("camera_info_topic", "camera_info", "sensor_msgs/CameraInfo topic of the camera", None),
    ("instruction_topic", "instruction", "dts_msgs/Instruction topic", None),
    ("action_predictor", "", "optical_flow or diffusion_policy (empty: params_file value)",
     ["", "optical_flow", "diffusion_policy"]),
    ("sim", "false", "also start the Meta-World bridge (simulated arm and camera)",
     ["true", "false"]),
    ("autostart", "", "configure + activate the lifecycle nodes on start (empty: params_file "
     "value)", ["", "true", "false"]),
    ("respawn", "false", "restart a node that exits", ["true", "false"]),
)


def parameter_overrides(values: dict) -> dict:
    """Parameters set by launch arguments; empty arguments keep the params file's values."""
    overrides = {"use_sim_time": values["use_sim_time"] == "true"}
    for argument, parameter in (("device", "device"), ("model_path", "model_path"),
                                ("action_predictor", "predictor.type")):
        if values[argument]:
            overrides[parameter] = values[argument]
    if values["autostart"]:
        overrides["autostart"] = values["autostart"] == "true"
    return overrides


def launch_setup(context: LaunchContext) -> list:
    """Build the node actions from the evaluated launch arguments."""
    values = {name: LaunchConfiguration(name).perform(context) for name, *_ in ARGUMENTS}
    params_file = values["params_file"] or PathJoinSubstitution(
        [FindPackageShare(PACKAGE), "config", "planner.yaml"])
    respawn = values["respawn"] == "true"
    common = {
        "package": PACKAGE,
        "namespace": "",   # relative: the pushed `namespace` argument applies
        "output": "screen",
        "respawn": respawn,
        "respawn_delay": 2.0,
        "sigterm_timeout": "20",   # s; torch-based Python processes take seconds to exit
        "arguments": ["--ros-args", "--log-level", values["log_level"]],
        "additional_env": {"PYTHONUNBUFFERED": "1"},
        "parameters": [ParameterFile(params_file, allow_substs=True),
                       parameter_overrides(values)],
        "remappings": [("image", values["camera_topic"]), ("depth", values["depth_topic"]),
                       ("camera_info", values["camera_info_topic"]),
                       ("instruction", values["instruction_topic"])],
    }
    nodes = [
        LifecycleNode(executable="planner_node", name="planner", **common),
        LifecycleNode(executable="action_predictor_node", name="action_predictor", **common),
    ]
    if values["sim"] == "true":
        nodes.append(Node(executable="metaworld_bridge_node", name="metaworld_bridge", **common))
    return [GroupAction([PushRosNamespace(values["namespace"]), *nodes])]


def generate_launch_description() -> LaunchDescription:
    """Declare the arguments and defer node creation until they are known."""
    arguments = [
        DeclareLaunchArgument(name, default_value=default, description=description,
                              **({"choices": choices} if choices else {}))
        for name, default, description, choices in ARGUMENTS]
    return LaunchDescription([
        *arguments,
        SetEnvironmentVariable("RCUTILS_LOGGING_BUFFERED_STREAM", "1"),
        OpaqueFunction(function=launch_setup),
    ])
