"""ROS overhead of the planner node: a camera at 30 Hz in, plans out, over DDS on loopback.

    python -m dts_planner.bench ros_overhead                 # 60 s, random 64x64 model, DDIM-4
    python -m dts_planner.bench ros_overhead --duration 600  # the 10-minute memory figure

Per plan (median, p95, max): the ROS overhead of the planner node, i.e. the time from taking
the frame to publishing the plan minus the model call (decoding, messages, publishing; target
<= 10 ms at 64x64); the DDS transport (image published -> callback, plan published ->
received); the frame's wait for the busy worker (the latest-frame policy); the model time.
Also frames received / skipped / stale and the process RSS after warm-up and at the end. Every
`--stale-every`-th frame is stamped 10 s in the past: stale frames must never be planned.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
import json
import math
import threading
import time

from dts_msgs.msg import Instruction, VideoPlan
import numpy as np
import rclpy
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.time import Time
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from dts_planner.ros.image_conversion import rgb_to_image
from dts_planner.ros.planner_node import PlannerNode
from dts_planner.ros.qos import latched_qos, make_qos
from dts_planner.ros.spin import autostart

_STALE_AGE_NS = 10 * 10**9


def rss_mib() -> float:
    """Resident set size of this process in MiB (Linux /proc)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return math.nan


def summary_ms(values: list[float]) -> dict[str, float]:
    """Median, p95 and max of durations in s, as ms (NaN when empty)."""
    if not values:
        return {"median_ms": math.nan, "p95_ms": math.nan, "max_ms": math.nan}
    ms = np.asarray(values) * 1e3
    return {"median_ms": round(float(np.median(ms)), 2),
            "p95_ms": round(float(np.percentile(ms, 95)), 2),
            "max_ms": round(float(ms.max()), 2)}


@dataclass
class PlanTiming:
    """What the benchmark keeps of one plan (messages are not kept: RSS must stay flat)."""

    transport_s: float       # (image published -> plan received) - (callback -> publish)
    wait_s: float            # frame waiting for the worker (latest-frame policy)
    sampling_s: float
    image_age_s: float


class CameraDriver(Node):
    """Publishes a synthetic camera at `rate_hz`; records publish times and the plans back."""

    def __init__(self, rate_hz: float, size: int, stale_every: int) -> None:
        """Start publishing; every `stale_every`-th frame is stamped 10 s in the past."""
        super().__init__("ros_overhead_camera")
        self.published: dict[int, float] = {}   # stamp ns -> time.monotonic(), last 2 s
        self.stale_sent = 0
        self.plans: list[PlanTiming] = []
        self._frames = np.random.default_rng(0).integers(0, 256, (8, size, size, 3), np.uint8)
        self._count = 0
        self._stale_every = stale_every
        self._image_pub = self.create_publisher(Image, "image", make_qos("reliable", 1))
        self.instruction_pub = self.create_publisher(Instruction, "instruction", latched_qos())
        self.create_subscription(VideoPlan, "plan", self._on_plan, 10)
        self.create_timer(1.0 / rate_hz, self._tick)

    def _on_plan(self, plan: VideoPlan) -> None:
        received = time.monotonic()
        report = plan.diagnostics
        published = self.published.get(Time.from_msg(plan.header.stamp).nanoseconds, math.nan)
        self.plans.append(PlanTiming(
            transport_s=received - published - report.total_latency_s,
            wait_s=report.queue_wait_s, sampling_s=report.sampling_time_s,
            image_age_s=report.image_age_s))

    def _tick(self) -> None:
        self._count += 1
        stamp = self.get_clock().now()
        if self._stale_every and self._count % self._stale_every == 0:
            stamp = Time(nanoseconds=stamp.nanoseconds - _STALE_AGE_NS)
            self.stale_sent += 1
        header = Header(stamp=stamp.to_msg(), frame_id="camera")
        msg = rgb_to_image(self._frames[self._count % len(self._frames)], header)
        now = time.monotonic()
        self.published[stamp.nanoseconds] = now
        for old in [k for k, t in self.published.items() if t < now - 2.0]:
            del self.published[old]
        self._image_pub.publish(msg)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m dts_planner.bench ros_overhead",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds to run (60)")
    parser.add_argument("--rate", type=float, default=30.0, help="camera frames/s (30)")
    parser.add_argument("--size", type=int, default=64, help="image and model size, px (64)")
    parser.add_argument("--preset", default="default", help="random-weight model preset")
    parser.add_argument("--sampler", default="ddim", help="sampler (ddim)")
    parser.add_argument("--steps", type=int, default=4, help="ddim/dpm_solver steps (4)")
    parser.add_argument("--stale-every", type=int, default=30,
                        help="every n-th frame is 10 s old (30 = once a second; 0 = never)")
    parser.add_argument("--json", default="", help="also write the figures to this file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    args = parse_args(argv)
    rclpy.init()
    planner = PlannerNode(parameter_overrides=[
        Parameter("device", value="cpu"), Parameter("model_preset", value=args.preset),
        Parameter("image_size", value=args.size), Parameter("sampler", value=args.sampler),
        Parameter("ddim.num_steps", value=args.steps),
        Parameter("dpm_solver.num_steps", value=args.steps),
        Parameter("replan_policy", value="continuous"), Parameter("autostart", value=False)])
    executor = MultiThreadedExecutor(num_threads=4)
    executor.add_node(planner)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    camera = None
    try:
        if not autostart(planner):
            return 1
        camera = CameraDriver(args.rate, args.size, args.stale_every)
        executor.add_node(camera)
        camera.instruction_pub.publish(Instruction(text="open the door", task_id="bench"))
        time.sleep(2.0)                          # discovery and the first plans
        rss_start, started = rss_mib(), time.monotonic()
        rss_peak = rss_start
        while time.monotonic() - started < args.duration:
            time.sleep(1.0)
            rss_peak = max(rss_peak, rss_mib())
        rss_end = rss_mib()
        figures = measure(camera, planner, args)
        figures["rss_mib"] = {"after_warmup": round(rss_start, 1), "end": round(rss_end, 1),
                              "peak": round(rss_peak, 1),
                              "growth_pct": round(100 * (rss_end / rss_start - 1), 2)}
    finally:
        executor.shutdown()
        spinner.join(timeout=10.0)
        for node in (planner, camera):
            if node is not None:
                node.destroy_node()
        rclpy.try_shutdown()
    print(json.dumps(figures, indent=2))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(figures, out, indent=2)
    return 0


def measure(camera: CameraDriver, planner: PlannerNode, args: argparse.Namespace) -> dict:
    """Overheads and counts from the recorded plans and the planner's counters."""
    plans = camera.plans
    stale_planned = sum(p.image_age_s * 1e9 >= _STALE_AGE_NS / 2 for p in plans)
    counts = planner.health.counts()
    return {
        "setup": {"duration_s": args.duration, "rate_hz": args.rate, "size": args.size,
                  "model": f"random {args.preset}", "sampler": f"{args.sampler}-{args.steps}"},
        "plans": len(plans),
        "ros_overhead_ms": summary_ms(planner.health.series("ros_overhead_s")),  # last 500
        "dds_transport_ms": summary_ms(
            [p.transport_s for p in plans if not math.isnan(p.transport_s)]),
        "worker_wait_ms": summary_ms([p.wait_s for p in plans]),
        "sampling_ms": summary_ms([p.sampling_s for p in plans]),
        "frames": {"received": counts.get("images_received", 0),
                   "skipped_latest_frame_policy": counts.get("images_skipped", 0),
                   "stale_sent": camera.stale_sent,
                   "stale_dropped": counts.get("images_stale", 0),
                   "stale_planned": int(stale_planned),
                   "invalid": sum(v for k, v in counts.items()
                                  if k.startswith("images_invalid"))},
    }
