"""Action-predictor lifecycle node: the video policy's closed loop on the ROS graph.

Thin adapter over `dts_planner.policy.ClosedLoopPolicy` (the same rules the evaluation runs)
and the predictor built by `dts_planner.predictors.make_predictor`. Camera-side topics are
paired by approximate time into observations; for each new observation one worker thread asks
the policy what to do: request a plan from the planner (`request_plan` service, with the
observation's stamp and the plan's noise seed; nothing is published until that plan arrives,
as the evaluation's world waits for its plan; a request the planner refused, whose plan failed
there (`plan_diagnostics`) or that got no plan within `predictor.plan_timeout_s` is sent
again) or publish an ActionChunk stamped with the observation's acquisition time. Episodes
start (`predictor.episode_source`) on a simulator reset (`episode_status`, with the episode's
seed; an observation is used once the status of its step arrived, so no observation of a new
episode is acted on with the old episode's plan) or, on a real robot, when the instruction
text changes. Predictor model calls run on the process's compute thread. Mobile bases
(`predictor.mode: navigation`) also get `cmd_vel`, paced by a timer.
"""

from __future__ import annotations

from collections import deque, OrderedDict
from dataclasses import dataclass, replace
import time
from typing import Any, NoReturn

from dts_msgs.msg import ActionChunk as ActionChunkMsg
from dts_msgs.msg import EpisodeStatus, Instruction, PlanDiagnostics, VideoPlan
from dts_msgs.srv import RequestPlan
from geometry_msgs.msg import PointStamped, PoseStamped, TwistStamped
import numpy as np
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, Image

from dts_planner.common.poses import pose_matrix
from dts_planner.policy import ClosedLoopPolicy, LoopRules, PlanRequest
from dts_planner.predictors import (
    ActionChunk, make_predictor, METAWORLD_ACTION_SPACE, NAVIGATION_ACTION_SPACE,
    PredictorObservation, required_parts, uses_torch)
from dts_planner.ros import parameters
from dts_planner.ros.compute import compute_thread
from dts_planner.ros.image_conversion import (
    depth_to_metres, image_to_rgb, ImageConversionError, mask_to_bool)
from dts_planner.ros.observation_sync import make_synchronizer, StampedObservation
from dts_planner.ros.qos import latched_qos, make_qos
from dts_planner.ros.spin import run_nodes
from dts_planner.ros.stamps import stamp_ns
from dts_planner.ros.worker import LatestSlot
from dts_planner.ros.worker_node import LOG_THROTTLE_S, WorkerLifecycleNode

_ACTION_SPACES = {
    METAWORLD_ACTION_SPACE.name: ActionChunkMsg.END_EFFECTOR_DELTA_XYZ_GRIPPER,
    NAVIGATION_ACTION_SPACE.name: ActionChunkMsg.DISCRETE_NAVIGATION,
}
#: Per-frame parts: (part, message type, topic, decoder of the message).
_FRAME_PARTS = (
    ("rgb", Image, "image", image_to_rgb),
    ("depth", Image, "depth", depth_to_metres),
    ("object_mask", Image, "object_mask", mask_to_bool),
    ("hand_pos", PointStamped, "hand_position",
     lambda msg: np.array([msg.point.x, msg.point.y, msg.point.z])),
)
_RETRY_REQUEST_S = 0.5
"""s between two requests at least, whatever the planner answers (no request storm)."""
#: Plan reports of a request the planner took and ended without a plan (the other failures,
#: e.g. a stale frame, leave the request waiting in the planner for a newer frame).
_ENDED_WITHOUT_PLAN = (PlanDiagnostics.REJECTED_NAN, PlanDiagnostics.MODEL_ERROR,
                       PlanDiagnostics.TIMEOUT, PlanDiagnostics.CANCELLED)
_KEPT_STATUSES = 64


@dataclass(frozen=True)
class ReceivedPlan:
    """A plan's frames (F, H, W, 3) uint8 RGB with its id and source stamp (ns)."""

    plan_id: str
    stamp_ns: int
    frames: np.ndarray


@dataclass(frozen=True)
class EpisodeStart:
    """An episode began at `stamp_ns`; `seed` is its task variation (None if unknown)."""

    stamp_ns: int
    seed: int | None


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
    """Lifecycle node that runs the closed-loop policy on observations and plans."""

    status_name = "action predictor"

    def __init__(self, node_name: str = "action_predictor", **kwargs: Any) -> None:
        """Declare parameters and the /diagnostics publisher; nothing runs until activate."""
        self._observations: LatestSlot[StampedObservation] = LatestSlot()
        self._plans: LatestSlot[ReceivedPlan] = LatestSlot()
        self._episodes: LatestSlot[EpisodeStart] = LatestSlot()
        self._latest: dict[str, np.ndarray] = {}
        self._policy: ClosedLoopPolicy | None = None
        self._parts: set[str] = set()
        self._status_stamp_ns = -1
        self._episode_seen_ns = -1
        self._steps: OrderedDict[int, tuple[int, int]] = OrderedDict()  # stamp -> (start, step)
        self._instruction_text: str | None = None
        self._twists: deque[tuple[Any, float, float, float]] = deque()
        self._reset_loop_state(EpisodeStart(0, None))
        super().__init__(node_name, parameters.PREDICTOR_PARAMS, **kwargs)
        self.add_on_set_parameters_callback(
            lambda params: parameters.result(parameters.check_values(
                parameters.PREDICTOR_PARAMS, {p.name: p.value for p in params})))

    def _reset_loop_state(self, start: EpisodeStart) -> None:
        self._episode_start_ns = start.stamp_ns
        self._observation: StampedObservation | None = None
        self._acted: object = None     # the state last acted on (see _state)
        self._chunk: ActionChunkMsg | None = None   # the chunk sent for it
        self._plan_id = ""
        self._sent: PlanRequest | None = None
        self._sent_mono = -float("inf")

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Validate parameters and build the predictor; create publishers and the client."""
        values = parameters.current(self, parameters.PREDICTOR_PARAMS)
        reasons = parameters.check_values(parameters.PREDICTOR_PARAMS, values)
        if not reasons:
            try:
                kind, mode = values["predictor.type"], values["predictor.mode"]
                device = "cpu"
                if uses_torch(kind):    # the flow predictors' process never loads torch
                    from dts_planner.ros.device import select_device
                    device, warning = select_device(values["device"],
                                                    values["allow_cpu_fallback"])
                    if warning:
                        self.get_logger().warning(warning)
                predictor = compute_thread().call(
                    make_predictor, kind, mode, values["predictor.checkpoint_path"], str(device))
                self._parts = required_parts(kind, mode)
                self._policy = ClosedLoopPolicy(predictor, LoopRules(
                    values["predictor.max_plans"], values["predictor.max_plan_age_s"]))
            except (ValueError, OSError, RuntimeError, KeyError) as error:
                reasons.append(f"{error}; restart the node with a working value (device, "
                               "allow_cpu_fallback and predictor.* are read-only)")
        if reasons:
            return self.fail_configure(reasons)
        depth = values["output_qos_depth"]
        self._actions_pub = self.create_lifecycle_publisher(ActionChunkMsg, "actions", depth)
        self._outputs = [self._actions_pub]
        self._twist_pub = None
        if values["predictor.mode"] == "navigation":
            self._twist_pub = self.create_lifecycle_publisher(TwistStamped, "cmd_vel", depth)
            self._outputs.append(self._twist_pub)
        self._request_client = self.create_client(RequestPlan, "request_plan")
        self._note = "inactive"
        self.get_logger().info(
            f"predictor {values['predictor.type']} ({values['predictor.mode']}) configured")
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Subscribe and start the policy worker."""
        camera = make_qos(self.param("image_qos.reliability"), 1)
        frame_parts = [part for part in _FRAME_PARTS if part[0] in self._parts]
        self._frame_parts = frame_parts
        self._inputs = [
            *make_synchronizer(
                self, [(kind, topic, camera if kind is Image else 10)
                       for _, kind, topic, _ in frame_parts],
                self.param("predictor.sync_slop_s"), self._on_frame),
            self.create_subscription(VideoPlan, "plan", self._on_plan, 10),
            self.create_subscription(PlanDiagnostics, "plan_diagnostics", self._on_plan_report,
                                     10),
            self.create_subscription(CameraInfo, "camera_info", self._on_camera_info, camera),
            self.create_subscription(PoseStamped, "camera_pose", self._on_camera_pose, 10),
            self.create_subscription(EpisodeStatus, "episode_status", self._on_episode, 10),
            self.create_subscription(Instruction, "instruction", self._on_instruction,
                                     latched_qos()),
        ]
        if self._twist_pub is not None:
            self._inputs.append(self.create_timer(0.05, self._drive))
        self.start_worker(self._policy_step)
        self._error, self._note = "", ""
        return super().on_activate(state)

    def release(self) -> None:
        """Forget the stored observation, plan and pending commands."""
        self._observations.clear()
        self._plans.clear()
        self._twists.clear()

    def unconfigure(self) -> None:
        """Drop the predictor."""
        self._policy = None

    # ------------------------------------------------------------------ callbacks
    def _on_frame(self, *msgs: Any) -> None:
        """One approximately synchronised set of per-frame messages -> an observation."""
        self.health.input_arrived()
        self.health.count("observations_received")
        values = {}
        for (part, _, topic, decode), msg in zip(self._frame_parts, msgs):
            try:
                values[part] = decode(msg)
            except ImageConversionError as error:
                self.health.count(f"{topic}_invalid_{error.reason}")
                self.get_logger().warning(f"dropped {topic}: {error}",
                                          throttle_duration_sec=LOG_THROTTLE_S)
                return
        missing = {"intrinsics", "cam_to_world"} & self._parts - self._latest.keys()
        if missing:
            self.health.count("observations_without_" + "_".join(sorted(missing)))
            return
        rgb, header = values["rgb"], msgs[0].header
        shape = rgb.shape[:2]
        observation = StampedObservation(stamp_ns(header.stamp), header, PredictorObservation(
            rgb=rgb, depth=values.get("depth", np.zeros(shape, np.float32)),
            object_mask=values.get("object_mask", np.zeros(shape, bool)),
            hand_pos=values.get("hand_pos", np.zeros(3)),
            intrinsics=self._latest.get("intrinsics", np.eye(3)),
            cam_to_world=self._latest.get("cam_to_world", np.eye(4))))
        if self._observations.put(observation):
            self.health.count("observations_skipped")
        self.notify_worker()

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self._latest["intrinsics"] = np.asarray(msg.k, float).reshape(3, 3)

    def _on_camera_pose(self, msg: PoseStamped) -> None:
        p, q = msg.pose.position, msg.pose.orientation
        self._latest["cam_to_world"] = pose_matrix([p.x, p.y, p.z], [q.x, q.y, q.z, q.w])

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
        self._plans.put(ReceivedPlan(msg.plan_id, stamp_ns(msg.header.stamp), frames))
        self.notify_worker()

    def _on_episode(self, msg: EpisodeStatus) -> None:
        """Track the simulator's step status; a new `episode_start` starts an episode.

        Every status names its episode's start, so a subscriber that missed the reset (a
        bridge's first messages go out before discovery completes) still sees the episode.
        """
        if self.param("predictor.episode_source") != "simulator":
            return
        stamp, start = stamp_ns(msg.header.stamp), stamp_ns(msg.episode_start)
        if start != self._episode_seen_ns:
            self._episode_seen_ns = start
            self._episodes.put(EpisodeStart(start, msg.seed if msg.seed >= 0 else None))
        self._steps[stamp] = (start, msg.step)
        while len(self._steps) > _KEPT_STATUSES:
            self._steps.popitem(last=False)
        self._status_stamp_ns = max(self._status_stamp_ns, stamp)   # after the start
        self.notify_worker()

    def _on_instruction(self, msg: Instruction) -> None:
        """Start an episode on a new instruction text (episode_source instruction)."""
        if (msg.text == self._instruction_text
                or self.param("predictor.episode_source") != "instruction"):
            return
        self._instruction_text = msg.text
        self._episodes.put(EpisodeStart(stamp_ns(msg.header.stamp), None))
        self.notify_worker()

    # ------------------------------------------------------------------ policy worker
    def _policy_step(self) -> bool:
        """Act once on the newest observation not acted on yet, or ask for its plan."""
        status_ns = self._status_stamp_ns       # read before taking an episode start
        worked = self._take_inputs()
        observation, policy = self._observation, self._policy
        if observation is None:
            return worked
        if (self.param("predictor.episode_source") == "simulator"
                and observation.stamp_ns > status_ns):
            return worked    # its step's status (maybe a reset) has not arrived yet
        if self._state(observation) == self._acted:
            self._resend(observation)
            return worked
        if policy.pending is not None:
            self._send_request(policy.pending)
            return worked
        decision = compute_thread().call(policy.decide, observation.observation,
                                         observation.stamp_ns)
        if isinstance(decision, PlanRequest):
            self._send_request(decision)
            return True
        self._acted = self._state(observation)
        if decision.info.get("hold"):
            self.health.count("hold_chunks")
        header = observation.header
        header.frame_id = self.param("predictor.frame_id")
        if self._twist_pub is not None:     # navigation: each command runs this long
            decision = replace(decision, dt=self.param("predictor.command_duration_s"))
        self._chunk = chunk_to_msg(decision, header, self._plan_id)
        self._actions_pub.publish(self._chunk)
        self.health.count("chunks_published")
        if self._twist_pub is not None:
            self._queue_twists(decision, header)
        return True

    def _resend(self, observation: StampedObservation) -> None:
        """Send the state's chunk again when its state is re-published with a newer stamp.

        A paused (lockstep) simulator re-publishes a state it got no chunk for: the chunk was
        lost (e.g. sent before a new bridge's subscription was matched). Same actions, no new
        prediction; stamped with the newer observation.
        """
        if self._chunk is None or observation.stamp_ns <= stamp_ns(self._chunk.header.stamp):
            return
        self._chunk.header.stamp = observation.header.stamp
        self._actions_pub.publish(self._chunk)
        self.health.count("chunks_resent")

    def _state(self, observation: StampedObservation) -> object:
        """Identity of the world state an observation shows: one chunk per state.

        A simulator re-publishes a paused (lockstep) state with new stamps; its step status
        names the state (episode start, step), so a re-published frame is not acted on twice.
        Otherwise: the stamp.
        """
        return self._steps.get(observation.stamp_ns, observation.stamp_ns)

    def _take_inputs(self) -> bool:
        """Apply an episode start, the newest observation and plan; True if anything came."""
        start = self._episodes.take()
        if start is not None:
            current = self._observation
            self._policy.reset(start.seed)
            self._reset_loop_state(start)
            if current is not None and current.stamp_ns >= start.stamp_ns:
                self._observation = current       # it belongs to the new episode
            self.health.count("episode_resets")
        observation = self._observations.take()
        if observation is not None:
            if observation.stamp_ns < self._episode_start_ns:
                self.health.count("observations_from_previous_episode")
            else:
                self._observation = observation
        plan = self._plans.take()
        if plan is not None:
            if (plan.stamp_ns >= self._episode_start_ns
                    and self._policy.accept_plan(plan.frames, plan.stamp_ns)):
                self._plan_id, self._sent = plan.plan_id, None
                self.health.count("plans_followed")
            else:
                self.health.count("plans_ignored")
        return start is not None or observation is not None or plan is not None

    def _send_request(self, request: PlanRequest) -> None:
        """Ask the planner for `request`; again after a refusal, a failed plan or a timeout.

        At most one request every _RETRY_REQUEST_S (0.5 s), whatever the planner answers.
        """
        waited = time.monotonic() - self._sent_mono
        timeout = self.param("predictor.plan_timeout_s")
        timed_out = request == self._sent and 0 < timeout < waited
        if ((request == self._sent and not timed_out) or waited < _RETRY_REQUEST_S
                or not self._request_client.service_is_ready()):
            return
        if timed_out:
            self.health.count("plan_requests_timed_out")
            self.get_logger().warning(
                f"no plan {waited:.1f} s after the plan request (predictor.plan_timeout_s): "
                "asking again", throttle_duration_sec=LOG_THROTTLE_S)
        self._sent, self._sent_mono = request, time.monotonic()
        message = RequestPlan.Request(
            min_stamp=Time(nanoseconds=request.min_stamp_ns).to_msg(),
            seed=-1 if request.seed is None else request.seed)
        self._request_client.call_async(message).add_done_callback(
            lambda future: self._on_request_answer(request, future))
        self.health.count("plan_requests")

    def _on_request_answer(self, request: PlanRequest, future: Any) -> None:
        """Let the worker send a refused or failed request again."""
        error = future.exception()
        if error is None and future.result().accepted:
            return
        reason = error or future.result().message
        self.health.count("plan_requests_refused")
        self.get_logger().warning(f"plan request refused: {reason}",
                                  throttle_duration_sec=LOG_THROTTLE_S)
        if self._sent == request:
            self._sent = None
        self.notify_worker()

    def _on_plan_report(self, msg: PlanDiagnostics) -> None:
        """Let the worker ask again when the plan of the request in flight failed upstream."""
        sent = self._sent
        if (msg.status not in _ENDED_WITHOUT_PLAN or sent is None
                or stamp_ns(msg.header.stamp) < sent.min_stamp_ns):
            return
        self.health.count("plans_failed_upstream")
        self.get_logger().warning(f"the planner ended the requested plan without a plan "
                                  f"(status {msg.status}: {msg.message}); asking again",
                                  throttle_duration_sec=LOG_THROTTLE_S)
        if self._sent == sent:
            self._sent = None
        self.notify_worker()

    # ------------------------------------------------------------------ cmd_vel
    def _queue_twists(self, chunk: ActionChunk, header: Any) -> None:
        """Queue one TwistStamped per discrete command, `chunk.dt` apart, then a stop."""
        start = time.monotonic()
        self._twists.clear()
        for i, label in enumerate(chunk.data[:chunk.num_execute, 0].astype(int)):
            vx, wz = twist_for(int(label), self.param("predictor.linear_speed"),
                               self.param("predictor.angular_speed"))
            self._twists.append((header, start + i * chunk.dt, vx, wz))
        self._twists.append((header, start + chunk.num_execute * chunk.dt, 0.0, 0.0))

    def _drive(self) -> None:
        """Timer: publish the commands that are due."""
        now = time.monotonic()
        while self._twists and self._twists[0][1] <= now:
            header, _, vx, wz = self._twists.popleft()
            msg = TwistStamped()
            msg.header.stamp = self.get_clock().now().to_msg()
            msg.header.frame_id = header.frame_id
            msg.twist.linear.x, msg.twist.angular.z = vx, wz
            self._twist_pub.publish(msg)


def main(args: list[str] | None = None) -> NoReturn:
    """Run the action-predictor node (`ros2 run dts_planner action_predictor_node`)."""
    run_nodes(lambda: [ActionPredictorNode()], args)


if __name__ == "__main__":
    main()
