"""Action-predictor lifecycle node: `plan` + camera-side observation -> `actions` (+ `cmd_vel`).

Thin adapter over `dts_planner.predictors`. Callbacks decode and store; one worker thread runs
the predictor on each new observation once a plan of the current episode is known, publishes an
ActionChunk stamped with that observation's acquisition time (the plan's source image for the
first chunk of a plan), and asks the planner for a new plan (`replan` service) when the
predictor wants one. Mobile bases (`predictor.mode: navigation`) also get `cmd_vel`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
import time
from typing import Any

from dts_msgs.msg import ActionChunk as ActionChunkMsg
from dts_msgs.msg import EpisodeStatus, VideoPlan
from geometry_msgs.msg import PointStamped, PoseStamped, TwistStamped
import numpy as np
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from rclpy.time import Time
from scipy.spatial.transform import Rotation
from sensor_msgs.msg import CameraInfo, Image
from std_srvs.srv import Trigger

from dts_planner.predictors import (
    ActionChunk, ActionPredictor, METAWORLD_ACTION_SPACE, NAVIGATION_ACTION_SPACE)
from dts_planner.predictors.diffusion_policy import load_policy
from dts_planner.predictors.diffusion_policy_predictor import (
    DEFAULT_POLICY_WEIGHTS, DiffusionPolicyPredictor)
from dts_planner.predictors.manipulation_flow_policy import FlowManipulationPolicy
from dts_planner.predictors.navigation import FlowNavigationPolicy
from dts_planner.ros import parameters
from dts_planner.ros.device import select_device
from dts_planner.ros.image_conversion import (
    depth_to_metres, image_to_rgb, ImageConversionError, mask_to_bool)
from dts_planner.ros.observation_sync import ObservationSync, StampedObservation
from dts_planner.ros.qos import make_qos
from dts_planner.ros.spin import run_nodes
from dts_planner.ros.worker import LatestSlot
from dts_planner.ros.worker_node import LOG_THROTTLE_S, WorkerLifecycleNode

_ACTION_SPACES = {
    METAWORLD_ACTION_SPACE.name: ActionChunkMsg.END_EFFECTOR_DELTA_XYZ_GRIPPER,
    NAVIGATION_ACTION_SPACE.name: ActionChunkMsg.DISCRETE_NAVIGATION,
}


@dataclass
class ReceivedPlan:
    """A plan's frames (F, H, W, 3) uint8 RGB with its id and source stamp (ns)."""

    plan_id: str
    stamp_ns: int
    frames: np.ndarray


def make_predictor(kind: str, mode: str, checkpoint_path: str, device: str) -> ActionPredictor:
    """Build the predictor for `predictor.type` and `predictor.mode` (ValueError if unusable)."""
    if kind == "optical_flow":
        return FlowManipulationPolicy() if mode == "manipulation" else FlowNavigationPolicy()
    if mode != "manipulation":
        raise ValueError("predictor.type diffusion_policy drives the Meta-World arm only "
                         "(predictor.mode manipulation)")
    path = Path(checkpoint_path) if checkpoint_path else DEFAULT_POLICY_WEIGHTS
    if not path.is_file():
        raise ValueError(f"diffusion-policy checkpoint '{path}' not found; set "
                         "predictor.checkpoint_path")
    return DiffusionPolicyPredictor(load_policy(str(path), device))


def required_parts(kind: str, mode: str) -> set[str]:
    """Observation parts (see ObservationSync) the predictor reads."""
    if kind == "diffusion_policy":
        return {"rgb", "hand_pos"}
    if mode == "navigation":
        return {"rgb", "depth", "intrinsics"}
    return {"rgb", "depth", "object_mask", "hand_pos", "intrinsics", "cam_to_world"}


def twist_for(label_index: int, linear_speed: float, angular_speed: float) -> tuple[float, float]:
    """(vx m/s, wz rad/s) of a discrete navigation command (ActionChunk.NAV_* ids)."""
    return {
        ActionChunkMsg.NAV_MOVE_FORWARD: (linear_speed, 0.0),
        ActionChunkMsg.NAV_TURN_LEFT: (0.0, angular_speed),
        ActionChunkMsg.NAV_TURN_RIGHT: (0.0, -angular_speed),
    }.get(label_index, (0.0, 0.0))


def chunk_to_msg(chunk: ActionChunk, header: Any, plan_id: str) -> ActionChunkMsg:
    """Convert a chunk to an ActionChunk message of the rows to execute (`data[:num_execute]`)."""
    rows = chunk.data[:chunk.num_execute]
    return ActionChunkMsg(header=header, plan_id=plan_id,
                          action_space=_ACTION_SPACES[chunk.action_space.name],
                          dimension_names=list(chunk.dimension_names), dt=float(chunk.dt),
                          horizon=int(rows.shape[0]), data=rows.ravel().tolist())


class ActionPredictorNode(WorkerLifecycleNode):
    """Lifecycle node that turns the latest plan and observation into action chunks."""

    status_name = "action predictor"

    def __init__(self, node_name: str = "action_predictor", **kwargs: Any) -> None:
        """Declare parameters and the /diagnostics publisher; nothing runs until activate."""
        super().__init__(node_name, parameters.PREDICTOR_PARAMS, **kwargs)
        self.add_on_set_parameters_callback(
            lambda params: parameters.result(parameters.check_values(
                parameters.PREDICTOR_PARAMS, {p.name: p.value for p in params})))
        self._observations: LatestSlot[StampedObservation] = LatestSlot()
        self._plans: LatestSlot[ReceivedPlan] = LatestSlot()
        self._episode_start_ns = 0
        self._predictor_episode_ns = 0
        self._predictor: ActionPredictor | None = None
        self._sync: ObservationSync | None = None
        self._replan_requested_for = ""

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Validate parameters and build the predictor; create publishers and the client."""
        values = parameters.current(self, parameters.PREDICTOR_PARAMS)
        reasons = parameters.check_values(parameters.PREDICTOR_PARAMS, values)
        if not reasons:
            try:
                device, warning = select_device(values["device"], values["allow_cpu_fallback"])
                if warning:
                    self.get_logger().warning(warning)
                self._predictor = make_predictor(
                    values["predictor.type"], values["predictor.mode"],
                    values["predictor.checkpoint_path"], str(device))
            except (ValueError, OSError, RuntimeError, KeyError) as error:
                reasons.append(str(error))
        if reasons:
            return self.fail_configure(reasons)
        self._sync = ObservationSync(
            required_parts(values["predictor.type"], values["predictor.mode"]))
        depth = values["output_qos_depth"]
        self._actions_pub = self.create_lifecycle_publisher(ActionChunkMsg, "actions", depth)
        self._outputs = [self._actions_pub]
        self._twist_pub = None
        if values["predictor.mode"] == "navigation":
            self._twist_pub = self.create_lifecycle_publisher(TwistStamped, "cmd_vel", depth)
            self._outputs.append(self._twist_pub)
        self._replan_client = self.create_client(Trigger, "replan")
        self._note = "inactive"
        self.get_logger().info(
            f"predictor {values['predictor.type']} ({values['predictor.mode']}) configured")
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Subscribe and start the prediction worker."""
        camera = make_qos(self.param("image_qos.reliability"), 1)
        self._inputs = [
            self.create_subscription(VideoPlan, "plan", self._on_plan, 1),
            self.create_subscription(Image, "image", self._on_image, camera),
            self.create_subscription(Image, "depth", self._on_depth, camera),
            self.create_subscription(Image, "object_mask", self._on_mask, camera),
            self.create_subscription(CameraInfo, "camera_info", self._on_camera_info, camera),
            self.create_subscription(PointStamped, "hand_position", self._on_hand, 10),
            self.create_subscription(PoseStamped, "camera_pose", self._on_camera_pose, 10),
            self.create_subscription(EpisodeStatus, "episode_status", self._on_episode, 10),
        ]
        self.start_worker(self._predict_step)
        self._error, self._note = "", ""
        return super().on_activate(state)

    def release(self) -> None:
        """Forget the stored observation and plan."""
        self._observations.clear()
        self._plans.clear()

    def unconfigure(self) -> None:
        """Drop the predictor."""
        self._predictor = None

    # ------------------------------------------------------------------ callbacks
    def _decode(self, convert: Any, msg: Image, what: str) -> np.ndarray | None:
        try:
            return convert(msg)
        except ImageConversionError as error:
            self.health.count(f"{what}_invalid_{error.reason}")
            self.get_logger().warning(f"dropped {what}: {error}",
                                      throttle_duration_sec=LOG_THROTTLE_S)
            return None

    def _add_part(self, header: Any, part: str, value: Any) -> None:
        stamp_ns = Time.from_msg(header.stamp).nanoseconds
        observation = self._sync.add(stamp_ns, part, value,
                                     header if part == "rgb" else None)
        if observation is not None:
            if self._observations.put(observation):
                self.health.count("observations_skipped")
            self.notify_worker()

    def _on_image(self, msg: Image) -> None:
        self.health.input_arrived()
        self.health.count("images_received")
        rgb = self._decode(image_to_rgb, msg, "image")
        if rgb is not None:
            self._add_part(msg.header, "rgb", rgb)

    def _on_depth(self, msg: Image) -> None:
        depth = self._decode(depth_to_metres, msg, "depth")
        if depth is not None:
            self._add_part(msg.header, "depth", depth)

    def _on_mask(self, msg: Image) -> None:
        mask = self._decode(mask_to_bool, msg, "object_mask")
        if mask is not None:
            self._add_part(msg.header, "object_mask", mask)

    def _on_hand(self, msg: PointStamped) -> None:
        self._add_part(msg.header, "hand_pos", np.array([msg.point.x, msg.point.y, msg.point.z]))

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self._sync.set_latest("intrinsics", np.asarray(msg.k, float).reshape(3, 3))

    def _on_camera_pose(self, msg: PoseStamped) -> None:
        p, q = msg.pose.position, msg.pose.orientation
        pose = np.eye(4)
        pose[:3, :3] = Rotation.from_quat([q.x, q.y, q.z, q.w]).as_matrix()
        pose[:3, 3] = [p.x, p.y, p.z]
        self._sync.set_latest("cam_to_world", pose)

    def _on_plan(self, msg: VideoPlan) -> None:
        """Decode and store the latest plan."""
        self.health.count("plans_received")
        try:
            frames = np.stack([image_to_rgb(frame) for frame in msg.frames])
        except (ImageConversionError, ValueError) as error:
            self.health.count("plans_invalid")
            self.get_logger().warning(f"dropped plan {msg.plan_id}: {error}",
                                      throttle_duration_sec=LOG_THROTTLE_S)
            return
        self._plans.put(ReceivedPlan(msg.plan_id, Time.from_msg(msg.header.stamp).nanoseconds,
                                     frames))
        self.notify_worker()

    def _on_episode(self, msg: EpisodeStatus) -> None:
        """Forget the plan and the predictor's state when a new episode starts."""
        if msg.reset_reason != EpisodeStatus.RESET_NONE and msg.step == 0:
            self._episode_start_ns = Time.from_msg(msg.header.stamp).nanoseconds
            self._plans.clear()
            self.health.count("episode_resets")

    # ------------------------------------------------------------------ prediction worker
    def _predict_step(self) -> bool:
        """Predict once for the newest observation if a usable plan is known."""
        plan = self._plans.peek()
        if plan is None:
            return False
        if plan.stamp_ns < self._episode_start_ns:
            # planned from a frame of the previous episode (the planner took it while the
            # reset was on its way): ask for a plan from this episode, else nothing moves
            if plan.plan_id != self._replan_requested_for:
                self.health.count("plans_from_previous_episode")
            self._request_replan(plan.plan_id)
            return False
        observation = self._observations.take()
        if observation is None:
            return False
        if observation.stamp_ns < self._episode_start_ns:
            return True
        age_s = (observation.stamp_ns - plan.stamp_ns) / 1e9
        if age_s > self.param("predictor.max_plan_age_s"):
            self.health.count("plans_too_old")
            self._request_replan(plan.plan_id)
            return True
        if self._predictor_episode_ns != self._episode_start_ns:
            self._predictor.reset()
            self._predictor_episode_ns = self._episode_start_ns
        started = time.perf_counter()
        chunk = self._predictor.predict(observation, plan.frames)
        self.health.set(last_predict_time_s=time.perf_counter() - started,
                        last_plan_age_s=age_s)
        if chunk.replan:
            self._request_replan(plan.plan_id)
        if chunk.num_execute == 0:
            self.health.count("empty_chunks")
            return True
        observation.header.frame_id = self.param("predictor.frame_id")
        self._actions_pub.publish(chunk_to_msg(chunk, observation.header, plan.plan_id))
        self.health.count("chunks_published")
        if self._twist_pub is not None:
            self._drive(chunk, observation.header)
        return True

    def _drive(self, chunk: ActionChunk, header: Any) -> None:
        """Publish cmd_vel for each discrete command of the chunk, `chunk.dt` apart, then stop."""
        for label_index in chunk.data[:chunk.num_execute, 0].astype(int):
            vx, wz = twist_for(int(label_index), self.param("predictor.linear_speed"),
                               self.param("predictor.angular_speed"))
            self._publish_twist(header, vx, wz)
            if self.stopping:
                break
            time.sleep(chunk.dt)
        self._publish_twist(header, 0.0, 0.0)

    def _publish_twist(self, header: Any, vx: float, wz: float) -> None:
        msg = TwistStamped()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = header.frame_id
        msg.twist.linear.x, msg.twist.angular.z = vx, wz
        self._twist_pub.publish(msg)

    def _request_replan(self, plan_id: str) -> None:
        """Ask the planner for a new plan (once per plan; no wait for the answer)."""
        if plan_id == self._replan_requested_for or not self._replan_client.service_is_ready():
            return
        self._replan_requested_for = plan_id
        self._replan_client.call_async(Trigger.Request())
        self.health.count("replans_requested")


def main(args: list[str] | None = None) -> None:
    """Run the action-predictor node (`ros2 run dts_planner action_predictor_node`)."""
    run_nodes(lambda: [ActionPredictorNode()], args)
