"""Meta-World bridge node: a simulated robot arm and camera on the ROS graph.

Publishes the camera (`image` rgb8, `depth` 32FC1 m, `camera_info`), what the flow predictor
needs besides (`object_mask` mono8, `hand_position`, `camera_pose` in the world frame), the task's
`instruction` (latched) and `episode_status`; executes `actions` (dts_msgs/ActionChunk) one row
per step at `sim.rate_hz`; resets on success or timeout. The MuJoCo environment lives on one
dedicated thread. Depth and the object mask are rendered and published only while someone
subscribes to either (the goal-servo predictor reads colour only): half the rendering.
"""

from __future__ import annotations

from collections import deque
import math
import threading
import time
from typing import Any, NoReturn

from dts_msgs.msg import ActionChunk, EpisodeStatus, Instruction
from geometry_msgs.msg import PointStamped, PoseStamped
import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from dts_planner.eval.closed_loop import EpisodeResult
from dts_planner.ros import parameters
from dts_planner.ros.image_conversion import depth_to_image, mask_to_image, rgb_to_image
from dts_planner.ros.qos import latched_qos, make_qos
from dts_planner.ros.spin import run_nodes
from dts_planner.ros.stamps import stamp_ns
from dts_planner.ros.worker import Worker
from dts_planner.sim import env_name, MetaWorldEnv, Observation

_ACTION_DIM = 4
_WORLD_FRAME = "world"


def camera_info(K: np.ndarray, height: int, width: int, header: Header) -> CameraInfo:
    """Pinhole CameraInfo (no distortion) for intrinsics K (3, 3)."""
    P = np.hstack([K, np.zeros((3, 1))])
    return CameraInfo(header=header, height=height, width=width, distortion_model="plumb_bob",
                      d=[0.0] * 5, k=K.astype(float).ravel().tolist(),
                      r=np.eye(3).ravel().tolist(), p=P.astype(float).ravel().tolist())


def pose_msg(pose: np.ndarray, header: Header) -> PoseStamped:
    """Pack a (7,) pose (position xyz, quaternion xyzw) into a PoseStamped, exactly."""
    msg = PoseStamped(header=header)
    p, q = msg.pose.position, msg.pose.orientation
    p.x, p.y, p.z, q.x, q.y, q.z, q.w = (float(v) for v in pose)
    return msg


def chunk_rows(msg: ActionChunk) -> np.ndarray:
    """Return the (horizon, 4) actions of a Meta-World chunk; ValueError if it is not one."""
    if msg.action_space != ActionChunk.END_EFFECTOR_DELTA_XYZ_GRIPPER:
        raise ValueError(f"action_space {msg.action_space} is not END_EFFECTOR_DELTA_XYZ_GRIPPER")
    data = np.asarray(msg.data, np.float32)
    if data.size != msg.horizon * _ACTION_DIM or msg.horizon == 0:
        raise ValueError(f"{data.size} values for horizon {msg.horizon} x {_ACTION_DIM}")
    if not np.all(np.isfinite(data)):
        raise ValueError("actions contain NaN/Inf")
    return data.reshape(msg.horizon, _ACTION_DIM)


class MetaWorldBridgeNode(Node):
    """Steps one Meta-World task at a set rate with the actions it receives."""

    def __init__(self, node_name: str = "metaworld_bridge", **kwargs: Any) -> None:
        """Declare parameters, publishers and the action subscription; start the sim thread."""
        self._worker: Worker | None = None
        super().__init__(node_name, **kwargs)
        parameters.declare(self, parameters.BRIDGE_PARAMS)
        self.add_on_set_parameters_callback(
            lambda params: parameters.result(parameters.check_values(
                parameters.BRIDGE_PARAMS, {p.name: p.value for p in params})))
        self.results: list[EpisodeResult] = []
        self.dropped_chunks = 0
        self._lock = threading.Lock()
        self._queue: deque[np.ndarray] = deque()
        self._accept_after_ns = 0
        self._env: MetaWorldEnv | None = None
        self._obs: Observation | None = None
        self._status = EpisodeStatus()
        self._last_publish = -math.inf
        self._next_step = 0.0
        camera = make_qos("reliable", 1)
        self._pubs = {
            "image": self.create_publisher(Image, "image", camera),
            "depth": self.create_publisher(Image, "depth", camera),
            "camera_info": self.create_publisher(CameraInfo, "camera_info", camera),
            "object_mask": self.create_publisher(Image, "object_mask", camera),
            "hand_position": self.create_publisher(PointStamped, "hand_position", 10),
            "camera_pose": self.create_publisher(PoseStamped, "camera_pose", 10),
            "instruction": self.create_publisher(Instruction, "instruction", latched_qos()),
            "episode_status": self.create_publisher(EpisodeStatus, "episode_status", 10),
        }
        self.create_subscription(ActionChunk, "actions", self._on_actions, 10)
        env_name(self._param("task"))   # fail fast on an unknown task
        self._failed = self._finished = False
        self._worker = Worker(f"{node_name}-sim", self._sim_step, self._on_sim_error,
                              self.context.ok, idle_wait_s=0.001, on_exit=self._close_env)
        self._worker.start()

    def _param(self, name: str) -> Any:
        return self.get_parameter(f"sim.{name}").value

    # ------------------------------------------------------------------ actions in
    def _on_actions(self, msg: ActionChunk) -> None:
        """Queue a chunk computed from the current state (older chunks are dropped)."""
        try:
            rows = chunk_rows(msg)
        except ValueError as error:
            with self._lock:
                self.dropped_chunks += 1
            self.get_logger().warning(f"dropped action chunk: {error}",
                                      throttle_duration_sec=5.0)
            return
        stamp = stamp_ns(msg.header.stamp)
        with self._lock:
            lockstep = self._param("wait_for_actions")
            if stamp < self._accept_after_ns or (lockstep and self._queue):
                self.dropped_chunks += 1   # planned from a state the robot has left
                return
            self._queue = deque(rows)
            self._accept_after_ns = stamp

    # ------------------------------------------------------------------ simulation thread
    def _sim_step(self) -> bool:
        """Start the env on first use, then one paced step (or a wait for actions)."""
        if self._failed or self._finished:
            return False
        if self._env is None:
            self._env = MetaWorldEnv(self._param("task"), self._param("camera"),
                                     self._param("seed"), self._param("resolution"))
            self._reset(EpisodeStatus.RESET_STARTUP)
            self._next_step = time.monotonic()
            return True
        now = time.monotonic()
        if now < self._next_step:
            return False
        lockstep = self._param("wait_for_actions")
        with self._lock:
            action = self._queue.popleft() if self._queue else None
            out_of_actions = not self._queue
            if lockstep and action is not None and out_of_actions:
                # leaving this state: from now on, refuse chunks computed from any copy of it
                # (a re-sent chunk arriving before the next state is published)
                self._accept_after_ns = max(self._accept_after_ns,
                                            self.get_clock().now().nanoseconds)
        if action is None and lockstep:
            if now - self._last_publish > self._param("republish_period_s"):
                self._publish_observation(new_state=False)   # the same state, a fresh stamp
            return False
        self._next_step = max(self._next_step + 1.0 / self._param("rate_hz"), now)
        self._env.depth_views = self._depth_wanted()
        result = self._env.step(np.zeros(_ACTION_DIM) if action is None else action)
        self._obs = result.observation
        steps, max_steps = self._env.steps, self._param("max_steps")
        self._status.step, self._status.max_steps = steps, max_steps
        self._status.reward, self._status.success = result.reward, result.success
        self._status.reset_reason = EpisodeStatus.RESET_NONE
        done = result.done or steps >= max_steps
        self._status.done = done
        if done:
            self._finish_episode(result.success, steps)
        elif out_of_actions or not lockstep:
            self._publish_observation()
        else:
            self._publish_status()
        return True

    def _finish_episode(self, success: bool, steps: int) -> None:
        episode = self._status.episode
        self._publish_status()
        self.get_logger().info(
            f"episode {episode} ({self._env.task}, seed {self._env.seed}): "
            f"{'success' if success else 'timeout'} after {steps} steps")
        self.results.append(EpisodeResult(self._env.task, self._env.seed, success, steps,
                                          camera=self._env.camera))
        limit = self._param("episodes")
        if limit and len(self.results) >= limit:
            self._finished = True     # idle from now on: the requested episodes are done
            return
        self._reset(EpisodeStatus.RESET_SUCCESS if success else EpisodeStatus.RESET_TIMEOUT)

    def _reset(self, reason: int) -> None:
        """Start the next episode: reset the env, announce the instruction, publish the camera."""
        episode = len(self.results)
        self._env.depth_views = self._depth_wanted()
        self._obs = self._env.reset(seed=self._param("seed") + episode)
        header = self._header(_WORLD_FRAME)
        with self._lock:
            self._queue.clear()
            self._accept_after_ns = stamp_ns(header.stamp)
        self._status = EpisodeStatus(task=self._env.task, episode=episode, seed=self._env.seed,
                                     episode_start=header.stamp, step=0,
                                     max_steps=self._param("max_steps"), reset_reason=reason)
        self._pubs["instruction"].publish(Instruction(
            header=header, text=self._env.instruction, task_id=self._env.task))
        self._publish_observation()
        self._status.reset_reason = EpisodeStatus.RESET_NONE   # announced once

    def _depth_wanted(self) -> bool:
        """Whether anyone subscribes to depth or object_mask (rendered in a second pass)."""
        return any(self._pubs[name].get_subscription_count() for name in ("depth", "object_mask"))

    def _header(self, frame_id: str) -> Header:
        return Header(stamp=self.get_clock().now().to_msg(), frame_id=frame_id)

    def _publish_observation(self, new_state: bool = True) -> None:
        """Publish every camera-side topic with one stamp, then the episode status.

        Lockstep: for a new state (after a step or reset), chunks computed from earlier
        observations are refused from now on (they come from a state the robot has left).
        """
        if self._obs.depth is None and self._depth_wanted():   # a subscriber came: render
            self._env.depth_views = True                        # the same state with depth
            self._obs = self._env.observe()
        obs = self._obs
        camera = self._header(self._param("frame_id"))
        if new_state and self._param("wait_for_actions"):
            with self._lock:
                self._accept_after_ns = max(self._accept_after_ns, stamp_ns(camera.stamp))
        world = Header(stamp=camera.stamp, frame_id=_WORLD_FRAME)
        height, width = obs.rgb.shape[:2]
        self._pubs["camera_info"].publish(camera_info(obs.intrinsics, height, width, camera))
        if obs.depth is not None:
            self._pubs["depth"].publish(depth_to_image(obs.depth, camera))
            self._pubs["object_mask"].publish(mask_to_image(obs.object_mask, camera))
        hand = PointStamped(header=world)
        hand.point.x, hand.point.y, hand.point.z = (float(v) for v in obs.hand_pos)
        self._pubs["hand_position"].publish(hand)
        self._pubs["camera_pose"].publish(pose_msg(self._env.camera_pose, world))
        self._pubs["image"].publish(rgb_to_image(obs.rgb, camera))   # last: it triggers work
        self._last_publish = time.monotonic()
        self._publish_status(world)

    def _publish_status(self, header: Header | None = None) -> None:
        self._status.header = header or self._header(_WORLD_FRAME)
        self._pubs["episode_status"].publish(self._status)

    def _on_sim_error(self, error: BaseException) -> None:
        if self._env is None:   # could not start: stop trying
            self._failed = True
            self.get_logger().error(f"cannot start the simulation: {error}")
            return
        self.get_logger().error(f"simulation: {type(error).__name__}: {error}; resetting",
                                throttle_duration_sec=5.0)
        try:
            self._reset(EpisodeStatus.RESET_ERROR)
        except Exception as reset_error:  # noqa: BLE001 - stop stepping rather than crash
            self._failed = True
            self.get_logger().error(f"simulation reset failed, stopping: {reset_error}")

    def _close_env(self) -> None:
        """Free the env (and its render context) on the simulation thread."""
        if self._env is not None:
            self._env.close()
            self._env = None

    def close(self) -> None:
        """Stop the simulation thread (it closes the env as it ends)."""
        if self._worker is not None:
            self._worker.stop()

    def destroy_node(self) -> None:
        """Stop the simulation thread before the publishers go."""
        self.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> NoReturn:
    """Run the Meta-World bridge (`ros2 run dts_planner metaworld_bridge_node`)."""
    run_nodes(lambda: [MetaWorldBridgeNode()], args)


if __name__ == "__main__":
    main()
