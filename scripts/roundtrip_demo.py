"""Placeholder demo: a real two-node dts_msgs round trip over DDS (until `dts-demo` exists).

A client node publishes an Instruction; a stand-in planner node answers with a VideoPlan (random
frames + PlanDiagnostics) and an ActionChunk; the client checks and prints what arrived.
Exit status 0 on success, 1 on timeout.
"""

from __future__ import annotations

import sys
import threading
import time
import uuid

import numpy as np
import rclpy
from dts_msgs.msg import ActionChunk, Instruction, PlanDiagnostics, VideoPlan
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import Image


class StandInPlanner(Node):
    """Answers every Instruction with a random VideoPlan and a matching ActionChunk."""

    def __init__(self) -> None:
        """Create the subscription and the two publishers."""
        super().__init__("standin_planner")
        self.plan_pub = self.create_publisher(VideoPlan, "plan", 10)
        self.action_pub = self.create_publisher(ActionChunk, "actions", 10)
        self.create_subscription(Instruction, "instruction", self.on_instruction, 10)
        self.rng = np.random.default_rng(0)

    def on_instruction(self, msg: Instruction) -> None:
        """Publish a plan of 8 random 64x64 rgb8 frames and a 7x4 action chunk."""
        t0 = time.perf_counter()
        plan_id = uuid.uuid4().hex[:12]
        frames = []
        for _ in range(8):
            img = self.rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
            frames.append(Image(header=msg.header, height=64, width=64, encoding="rgb8",
                                step=64 * 3, data=img.tobytes()))
        diag = PlanDiagnostics(header=msg.header, plan_id=plan_id, status=PlanDiagnostics.OK,
                               sampler="standin", model_id="none", device="cpu",
                               acceptance_rate=float("nan"),
                               sampling_time_s=time.perf_counter() - t0)
        self.plan_pub.publish(VideoPlan(header=msg.header, plan_id=plan_id, instruction=msg.text,
                                        task_id=msg.task_id, frames=frames, frame_dt=0.4,
                                        diagnostics=diag))
        data = self.rng.uniform(-1, 1, (7, 4)).astype(np.float32)
        self.action_pub.publish(ActionChunk(
            header=msg.header, plan_id=plan_id,
            action_space=ActionChunk.END_EFFECTOR_DELTA_XYZ_GRIPPER,
            dimension_names=["dx", "dy", "dz", "gripper"], dt=0.0125, horizon=7,
            data=data.ravel().tolist()))


def main() -> int:
    """Run the round trip and return the exit status."""
    rclpy.init()
    client, planner = Node("demo_client"), StandInPlanner()
    got: dict[str, object] = {}
    done = threading.Event()

    def keep(key: str, msg: object) -> None:
        got[key] = msg
        if len(got) == 2:
            done.set()

    client.create_subscription(VideoPlan, "plan", lambda m: keep("plan", m), 10)
    client.create_subscription(ActionChunk, "actions", lambda m: keep("actions", m), 10)
    pub = client.create_publisher(Instruction, "instruction", 10)
    executor = MultiThreadedExecutor(num_threads=2)
    executor.add_node(client)
    executor.add_node(planner)
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            executor.spin_once(timeout_sec=0.05)

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    ok = False
    try:
        t0 = time.monotonic()
        while pub.get_subscription_count() == 0 and time.monotonic() - t0 < 10.0:
            time.sleep(0.01)
        t1 = time.perf_counter()
        msg = Instruction(text="open the door", task_id="door-open-v3")
        msg.header.stamp = client.get_clock().now().to_msg()
        msg.header.frame_id = "corner_camera_optical_frame"
        pub.publish(msg)
        ok = done.wait(10.0)
        if ok:
            plan, chunk = got["plan"], got["actions"]
            print(f"round trip OK in {1e3 * (time.perf_counter() - t1):.1f} ms "
                  f"(ROS_DOMAIN_ID={client.context.get_domain_id()}):")
            print(f"  VideoPlan {plan.plan_id}: '{plan.instruction}', {len(plan.frames)} frames "
                  f"{plan.frames[0].width}x{plan.frames[0].height} {plan.frames[0].encoding}, "
                  f"status {plan.diagnostics.status}")
            print(f"  ActionChunk {chunk.plan_id}: horizon {chunk.horizon} x "
                  f"{chunk.dimension_names}, dt {chunk.dt} s")
            ok = plan.plan_id == chunk.plan_id and len(plan.frames) == 8
        else:
            print("round trip FAILED: no plan/actions within 10 s", file=sys.stderr)
    finally:
        stop.set()
        thread.join()
        executor.shutdown()
        client.destroy_node()
        planner.destroy_node()
        rclpy.shutdown()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
