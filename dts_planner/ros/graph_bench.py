"""Sampling in the running ROS graph against the same sampler alone, under a camera stream.

    python -m dts_planner.bench ros_graph                      # both layouts, DTS, 640x480
    python -m dts_planner.bench ros_graph --layout process --sampler ddim:num_steps=10
    python -m dts_planner.bench ros_graph --size 1280x720 --json runs/ros_graph_720p.json

A synthetic camera publishes rgb8 frames at `--rate` Hz (BEST_EFFORT, depth 1, like a camera
driver's sensor-data QoS) while the bench, acting as the action predictor, asks the planner for
one plan after another (`request_plan`, newest frame). Layouts: `process` runs the planner as its
own process (`planner_node`, as `ros2 launch` does), `shared` runs it with an action predictor
in the bench's process (the layout of `dts-demo`: camera, planner and predictor in one process,
one executor, one compute thread). The standalone figure is the same model
and sampler (auto DTS thresholds resolved as the node does) planning in a fresh process without
ROS. Blocks alternate (standalone, graph,
standalone, graph) so drift of the machine's speed hits both alike. Reported per layout:
in-graph / standalone median sampling time, the in-graph p95 / median, the fraction of camera
frames the planner received, the age of the frame each plan started from (in frame periods),
the node's overhead around the sampler (decoding, messages, publishing; its /diagnostics) and
the planner process's RSS at the start and end.
"""

from __future__ import annotations

import argparse
from contextlib import contextmanager
import json
import math
import os
from pathlib import Path
import statistics
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Iterator

from builtin_interfaces.msg import Time as TimeMsg
from diagnostic_msgs.msg import DiagnosticArray
from dts_msgs.msg import Instruction, PlanDiagnostics
from dts_msgs.srv import RequestPlan
import numpy as np
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter_client import AsyncParameterClient
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from dts_planner.diffusion import parse_spec, SamplerSettings
from dts_planner.ros.image_conversion import rgb_to_image
from dts_planner.ros.policy_graph import overrides
from dts_planner.ros.qos import latched_qos, make_qos
from dts_planner.ros.spin import autostart, shutdown

INSTRUCTION = "door close"


def rss_mib(pid: int | None = None) -> float:
    """Resident set size of a process (default: this one) in MiB (Linux /proc)."""
    with open(f"/proc/{pid or 'self'}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return math.nan


def standalone_times(settings: SamplerSettings, plans: int, size: tuple[int, int],
                     threads: int) -> list[float]:
    """Time `plans` plans (sampling, s) in a fresh process without ROS (on its main thread)."""
    command = [sys.executable, "-m", "dts_planner.ros.graph_bench", "--standalone-worker",
               "--sampler", settings.spec(), "--plans", str(plans), "--threads", str(threads),
               "--size", f"{size[0]}x{size[1]}"]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _standalone_worker(args: argparse.Namespace) -> int:
    """Child process of `standalone_times`: print the sampling times as one JSON line."""
    import torch

    from dts_planner.planning.factory import build_planner, find_model_calibration
    from dts_planner.planning.sampler_choice import SamplerChoice
    torch.set_num_threads(args.threads)
    choice = SamplerChoice(*find_model_calibration("", "", "", "cpu"))   # as the node resolves
    settings = choice.resolve(args.sampler)[0]
    planner = build_planner("", "", 0, "default", settings.build(), torch.device("cpu"))[0]
    frame = np.random.default_rng(0).integers(0, 256, (args.size[1], args.size[0], 3), np.uint8)
    planner.plan(frame, INSTRUCTION, seed=0)
    times = [planner.plan(frame, INSTRUCTION, seed=i).sampling_time_s
             for i in range(1, args.plans + 1)]
    print(json.dumps(times))
    return 0


class Camera(Node):
    """Synthetic camera at `rate_hz` and the predictor's side: requests plans, records them."""

    def __init__(self, context: Context, size: tuple[int, int], rate_hz: float) -> None:
        """Publish frames on a timer; subscribe to plan_diagnostics and /diagnostics."""
        super().__init__("bench_camera", context=context)
        width, height = size
        self._frames = np.random.default_rng(0).integers(0, 256, (4, height, width, 3),
                                                         np.uint8)
        self.published = 0
        self.reports: list[PlanDiagnostics] = []
        self.planner_counts: dict[str, float] = {}
        self.planner_pid: int | None = None
        self._lock = threading.Lock()
        self._plan_done = threading.Event()
        self.images = self.create_publisher(Image, "image", make_qos("best_effort", 1))
        self.instruction = self.create_publisher(Instruction, "instruction", latched_qos())
        self.client = self.create_client(RequestPlan, "request_plan")
        self.create_subscription(PlanDiagnostics, "plan_diagnostics", self._on_report, 10)
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
        self.create_timer(1.0 / rate_hz, self._tick)

    def _tick(self) -> None:
        now = self.get_clock().now().to_msg()
        frame = self._frames[self.published % len(self._frames)]
        self.images.publish(rgb_to_image(frame, Header(stamp=now, frame_id="camera")))
        self.published += 1

    def _on_report(self, msg: PlanDiagnostics) -> None:
        with self._lock:
            self.reports.append(msg)
        self._plan_done.set()

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.endswith("planner: video planner"):
                values = {kv.key: kv.value for kv in status.values}
                with self._lock:
                    self.planner_counts = {k: float(v) for k, v in values.items()
                                           if _is_number(v)}

    def plan_once(self, timeout_s: float = 120.0) -> PlanDiagnostics | None:
        """Request one plan from the newest frame and wait for its diagnostics."""
        self._plan_done.clear()
        before = len(self.reports)
        self.client.call_async(RequestPlan.Request(min_stamp=TimeMsg()))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._plan_done.wait(0.1)
            with self._lock:
                if len(self.reports) > before:
                    return self.reports[-1]
        return None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _planner_params(args: argparse.Namespace) -> dict[str, Any]:
    return {"device": "cpu", "replan_policy": "on_demand", "sampler": args.sampler.name,
            **args.sampler.to_flat(), "diagnostics_period_s": 0.5, "warmup_runs": 1,
            "max_image_age_s": 10.0}


@contextmanager
def graph_session(layout: str, args: argparse.Namespace,
                  planner_params: dict[str, Any]) -> Iterator[tuple[Camera, ParameterSetter]]:
    """Start the camera and a planner in `layout`; yield the camera and a parameter setter.

    process: the planner is its own process (`planner_node`, as ros2 launch starts it), set
    through its parameter services; shared: planner and action predictor in this process.
    """
    context = Context()
    rclpy.init(context=context)
    executor = SingleThreadedExecutor(context=context)
    nodes: list[Node] = []
    process = None
    stop = threading.Event()
    spinner = threading.Thread(target=lambda: _spin(executor, context, stop), daemon=True)
    try:
        camera = Camera(context, args.size, args.rate)
        nodes.append(camera)
        executor.add_node(camera)
        if layout == "process":
            ros_args = [f"{k}:={json.dumps(v) if isinstance(v, str) else v}"
                        for k, v in planner_params.items()]
            command = [sys.executable, "-m", "dts_planner.ros.planner_node", "--ros-args",
                       *[arg for pair in ros_args for arg in ("-p", pair)]]
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.PIPE, text=True)
            camera.planner_pid = process.pid
            client = AsyncParameterClient(camera, "planner")
            set_params: ParameterSetter = lambda values: _set_remote(client, values)  # noqa
        else:   # the demo's layout: planner and action predictor share the camera's process
            from dts_planner.ros.action_predictor_node import ActionPredictorNode
            from dts_planner.ros.planner_node import PlannerNode
            planner = PlannerNode(context=context, parameter_overrides=overrides(
                {**planner_params, "autostart": False}))
            predictor = ActionPredictorNode(context=context, parameter_overrides=overrides(
                {"device": "cpu", "autostart": False}))
            for node in (planner, predictor):
                nodes.append(node)
                executor.add_node(node)
            set_params = lambda values: [  # noqa: E731
                r.reason for r in planner.set_parameters(overrides(values)) if not r.successful]
        spinner.start()
        if layout == "shared" and not (autostart(planner) and autostart(predictor)):
            raise RuntimeError("the planner or the action predictor failed to start")
        if not camera.client.wait_for_service(timeout_sec=120.0):
            raise RuntimeError("the planner's request_plan service never appeared")
        camera.instruction.publish(Instruction(text=INSTRUCTION, task_id="bench"))
        time.sleep(2.0)
        yield camera, set_params
    finally:
        stop.set()
        if spinner.is_alive():
            spinner.join(timeout=5.0)
        if process is not None:
            process.send_signal(2)
            try:
                process.wait(timeout=10.0)
            except subprocess.TimeoutExpired:
                process.kill()
        shutdown(executor, nodes, context)


ParameterSetter = Callable[[dict[str, Any]], list[str]]
"""Set planner parameters; returns the reasons of refused ones (empty: all set)."""


def _set_remote(client: AsyncParameterClient, values: dict[str, Any]) -> list[str]:
    """Set parameters of a planner in another process through its services."""
    future = client.set_parameters(overrides(values))
    deadline = time.monotonic() + 30.0
    while not future.done() and time.monotonic() < deadline:
        time.sleep(0.01)
    if not future.done():
        return ["no answer from the planner's set_parameters service"]
    return [r.reason for r in future.result().results if not r.successful]


def run_layout(layout: str, args: argparse.Namespace) -> dict[str, Any]:
    """Measure one layout; return its figures."""
    with graph_session(layout, args, _planner_params(args)) as (camera, _):
        return _measure(camera, args, rss_pid=camera.planner_pid)


def _spin(executor: SingleThreadedExecutor, context: Context, stop: threading.Event) -> None:
    while context.ok() and not stop.is_set():
        executor.spin_once(timeout_sec=0.1)


def _measure(camera: Camera, args: argparse.Namespace, rss_pid: int | None) -> dict[str, Any]:
    """Alternate standalone and in-graph blocks; return the figures of the layout."""
    standalone, in_graph, ages, specs = [], [], [], []
    period = 1.0 / args.rate
    rss_start = rss_mib(rss_pid)
    published0 = camera.published
    received0 = camera.planner_counts.get("images_received", 0.0)
    for _ in range(args.rounds):
        standalone += standalone_times(args.sampler, args.plans, args.size, args.threads)
        for _ in range(args.plans):
            report = camera.plan_once()
            if report is None or report.status != PlanDiagnostics.OK:
                raise RuntimeError(f"plan failed: {report.message if report else 'timeout'}")
            in_graph.append(report.sampling_time_s)
            specs.append(report.sampler_spec)
            ages.append(report.image_age_s / period)
    time.sleep(1.2)    # one more /diagnostics with the final counters
    received = camera.planner_counts.get("images_received", math.nan) - received0
    published = camera.published - published0
    median_graph, median_alone = statistics.median(in_graph), statistics.median(standalone)
    return {
        "plans": len(in_graph),
        "sampler_in_graph": sorted(set(specs)),
        "sampling_s": {"in_graph_median": median_graph, "standalone_median": median_alone,
                       "in_graph_p95": float(np.percentile(in_graph, 95)),
                       "standalone_p95": float(np.percentile(standalone, 95))},
        "ratio_in_graph_over_standalone": median_graph / median_alone,
        "p95_over_median_in_graph": float(np.percentile(in_graph, 95)) / median_graph,
        "intake": {"published": published, "received": received,
                   "fraction": received / published if published else math.nan},
        "frame_age_at_plan_start_periods": {"median": statistics.median(ages),
                                            "max": max(ages),
                                            "below_two": sum(a < 2.0 for a in ages) / len(ages)},
        "node_overhead_ms_median": 1e3 * camera.planner_counts.get("ros_overhead_s_median",
                                                                   math.nan),
        "rss_mib": {"start": rss_start, "end": rss_mib(rss_pid)},
    }


def parse_size(text: str) -> tuple[int, int]:
    """'640x480' -> (640, 480)."""
    width, _, height = text.partition("x")
    return int(width), int(height)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m dts_planner.bench ros_graph",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--layout", choices=("process", "shared", "both"), default="both")
    parser.add_argument("--sampler", type=parse_spec, default=parse_spec("dts"),
                        help="sampler spec (default dts, the shipped settings)")
    parser.add_argument("--size", type=parse_size, default=(640, 480), help="WxH (640x480)")
    parser.add_argument("--rate", type=float, default=30.0, help="camera frames/s (30)")
    parser.add_argument("--plans", type=int, default=12, help="plans per block (12)")
    parser.add_argument("--rounds", type=int, default=2, help="standalone+graph rounds (2)")
    parser.add_argument("--threads", type=int, default=torch_threads(),
                        help="torch threads of the standalone process (default: torch's)")
    parser.add_argument("--json", default="", help="also write the figures to this file")
    parser.add_argument("--standalone-worker", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def torch_threads() -> int:
    """Torch's default intra-op thread count here (the planner node's)."""
    import torch
    return torch.get_num_threads()


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    args = parse_args(argv)
    if args.standalone_worker:
        return _standalone_worker(args)
    layouts = ("process", "shared") if args.layout == "both" else (args.layout,)
    figures = {"setup": {"sampler": args.sampler.spec(), "model": "default (shipped)",
                         "camera": f"{args.size[0]}x{args.size[1]} rgb8 at {args.rate:g} Hz",
                         "plans_per_block": args.plans, "rounds": args.rounds,
                         "fastdds_profile": os.environ.get("FASTDDS_DEFAULT_PROFILES_FILE", "")}}
    for layout in layouts:
        figures[layout] = run_layout(layout, args)
    print_figures(figures, args.json)
    return 0


def print_figures(figures: dict[str, Any], path: str) -> None:
    """Print the figures as JSON, and write them to `path` too unless it is empty."""
    print(json.dumps(figures, indent=2))
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
