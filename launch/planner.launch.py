"""Bring up the dts_planner pipeline: planner -> action predictor (-> Meta-World bridge).

    ros2 launch dts_planner planner.launch.py device:=cuda:0 camera_topic:=/camera/color/image_raw
    ros2 launch dts_planner planner.launch.py sim:=true device:=cpu          # simulated arm

Parameters come from `params_file` (default: the package's config/planner.yaml); the arguments
device, allow_cpu_fallback, model_path, autostart and action_predictor override it only when
given (empty = keep the file's value); the table of arguments and their mapping to parameters
live in `dts_planner.ros.launch_arguments`. `dds_profile` points Fast DDS at a profile with a
shared-memory segment large enough for camera-size frames (config/fastdds_large_frames.xml).
Topic arguments remap the nodes' relative names, so several pipelines run side by side under
different namespaces. No network or package-manager steps.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchContext, LaunchDescription
from launch.actions import (
    DeclareLaunchArgument, GroupAction, OpaqueFunction, SetEnvironmentVariable)
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode, Node, PushRosNamespace
from launch_ros.descriptions import ParameterFile
from launch_ros.substitutions import FindPackageShare

from dts_planner.ros.launch_arguments import ARGUMENTS, parameter_overrides

PACKAGE = "dts_planner"
PROFILE = "FASTDDS_DEFAULT_PROFILES_FILE"


def launch_setup(context: LaunchContext) -> list:
    """Build the node actions from the evaluated launch arguments."""
    values = {name: LaunchConfiguration(name).perform(context) for name, *_ in ARGUMENTS}
    params_file = values["params_file"] or PathJoinSubstitution(
        [FindPackageShare(PACKAGE), "config", "planner.yaml"])
    respawn = values["respawn"] == "true"
    actions = []
    profile = values["dds_profile"]
    if profile == "default" and not os.environ.get(PROFILE):
        profile = os.path.join(get_package_share_directory(PACKAGE), "config",
                               "fastdds_large_frames.xml")
    if profile and profile != "default":
        actions.append(SetEnvironmentVariable(PROFILE, profile))
    common = {
        "package": PACKAGE,
        "namespace": "",   # relative: the pushed `namespace` argument applies
        "output": "screen",
        "respawn": respawn,
        "respawn_delay": 2.0,
        "sigterm_timeout": "5",    # s; the nodes stop within 2 s (a plan in flight is cancelled)
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
    return [*actions, GroupAction([PushRosNamespace(values["namespace"]), *nodes])]


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
