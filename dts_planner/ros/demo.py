"""`dts-demo`: the planner, action predictor and Meta-World bridge in one process, closed loop.

The three nodes share one MultiThreadedExecutor and one params file (config/planner.yaml by
default). The demo runs Meta-World episodes with the embedded default video model, prints per
episode success, plan latency and sampler stats, and writes a GIF of the last plan.

    dts-demo                                  # 2 episodes of drawer-close on the CPU
    dts-demo --episodes 5 --task drawer-close --sampler ddim --device cuda:0
"""

from __future__ import annotations

import argparse
from collections import defaultdict, OrderedDict
from dataclasses import dataclass
import math
from pathlib import Path
import statistics
import sys
import threading
import time

from dts_msgs.msg import PlanDiagnostics, VideoPlan
import numpy as np
from PIL import Image as PILImage
import rclpy
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image
import torch

from dts_planner.ros import parameters
from dts_planner.ros.action_predictor_node import ActionPredictorNode
from dts_planner.ros.image_conversion import image_to_rgb, tile_frames, with_source_frame
from dts_planner.ros.metaworld_bridge_node import MetaWorldBridgeNode
from dts_planner.ros.planner_node import PlannerNode
from dts_planner.ros.spin import autostart
from dts_planner.ros.worker import LatestSlot


@dataclass
class PlanRecord:
    """What the demo keeps of one published plan diagnostics message."""

    status: int
    latency_s: float
    sampling_s: float
    nfe: int
    depth: int
    acceptance: float


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options (defaults finish in a few minutes on a 2-core CPU)."""
    parser = argparse.ArgumentParser(prog="dts-demo", description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=2, help="episodes to run (default 2)")
    parser.add_argument("--task", default="drawer-close", help="Meta-World task (drawer-close)")
    parser.add_argument("--max-steps", type=int, default=500,
                        help="steps per episode (500, Meta-World's limit)")
    parser.add_argument("--rate", type=float, default=60.0, help="simulation steps/s (60)")
    parser.add_argument("--device", default="auto",
                        help="torch device; auto = cuda:0 if CUDA is available, else cpu")
    parser.add_argument("--model-path", default="",
                        help="video model checkpoint (default: the embedded default model)")
    parser.add_argument("--model-preset", default="",
                        help="smoke test without weights: a RANDOM-weight model of this preset")
    parser.add_argument("--sampler", choices=parameters.SAMPLERS,
                        help="sampler (default: the params file's, dts)")
    parser.add_argument("--action-predictor", choices=("optical_flow", "diffusion_policy"),
                        help="action predictor (default: the params file's, optical_flow)")
    parser.add_argument("--params-file", default=str(parameters.default_params_file()),
                        help="parameters YAML shared by the three nodes")
    parser.add_argument("--output", default="runs/demo", help="folder for plan.gif (runs/demo)")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="give up after this many seconds (900)")
    return parser.parse_args(argv)


def pick_device(requested: str) -> str:
    """Resolve 'auto' to cuda:0 when CUDA is available, else cpu (printed, never silent)."""
    if requested != "auto":
        return requested
    return "cuda:0" if torch.cuda.is_available() else "cpu"


def write_plan_gif(plan: VideoPlan, source: Image | None, path: Path, scale: int = 4) -> None:
    """GIF (4 frames/s) and PNG strip of the source frame then the plan, `scale`x upscaled."""
    frames = np.stack([image_to_rgb(frame) for frame in plan.frames])
    if source is not None:
        frames = with_source_frame(image_to_rgb(source), frames)
    frames = frames.repeat(scale, axis=1).repeat(scale, axis=2)
    images = [PILImage.fromarray(frame) for frame in frames]
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=250, loop=0)
    PILImage.fromarray(tile_frames(frames)).save(path.with_suffix(".png"))


def remember(images: OrderedDict, msg: Image, keep: int = 64) -> None:
    """Keep the last `keep` camera frames by stamp (a plan's source frame is among them)."""
    images[(msg.header.stamp.sec, msg.header.stamp.nanosec)] = msg
    while len(images) > keep:
        images.popitem(last=False)


def summarise(records: list[PlanRecord]) -> str:
    """One line of plan latency and sampler stats."""
    done = [r for r in records if r.status == PlanDiagnostics.OK]
    if not done:
        return f"plans 0 (of {len(records)} attempts)"
    acceptance = [r.acceptance for r in done if not math.isnan(r.acceptance)]
    line = (f"plans {len(done)}, latency {statistics.median(r.latency_s for r in done):.2f} s "
            f"(sampling {statistics.median(r.sampling_s for r in done):.2f} s), "
            f"NFE {statistics.median(r.nfe for r in done):.0f}, "
            f"depth {statistics.median(r.depth for r in done):.0f}")
    if acceptance:
        line += f", acceptance {statistics.fmean(acceptance):.2f}"
    return line


def main(argv: list[str] | None = None) -> int:
    """Run the closed-loop demo; exit code 0 when it ran (success or not), 1 on set-up errors."""
    args = parse_args(argv)
    device = pick_device(args.device)
    print(f"dts-demo: task {args.task}, {args.episodes} episode(s), device {device}, "
          f"params {args.params_file}", flush=True)
    rclpy.init(args=["--ros-args", "--params-file", args.params_file])
    executor = MultiThreadedExecutor(num_threads=4)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    nodes: list[Node] = []
    try:
        return run(args, device, executor, nodes)
    except KeyboardInterrupt:
        return 130
    finally:
        executor.shutdown()
        spinner.join(timeout=10.0)
        for node in reversed(nodes):   # destroy_node joins each node's worker thread
            node.destroy_node()
        rclpy.try_shutdown()


def run(args: argparse.Namespace, device: str, executor: MultiThreadedExecutor,
        nodes: list[Node]) -> int:
    """Build, start and watch the three nodes; print the episode table."""
    planner_overrides = [Parameter("device", value=device), Parameter("autostart", value=False)]
    if args.model_path:
        planner_overrides.append(Parameter("model_path", value=args.model_path))
    if args.model_preset:
        planner_overrides.append(Parameter("model_preset", value=args.model_preset))
    if args.sampler:
        planner_overrides.append(Parameter("sampler", value=args.sampler))
    planner = PlannerNode(parameter_overrides=planner_overrides)
    predictor_overrides = [Parameter("device", value=device), Parameter("autostart", value=False)]
    if args.action_predictor:
        predictor_overrides.append(Parameter("predictor.type", value=args.action_predictor))
    predictor = ActionPredictorNode(parameter_overrides=predictor_overrides)
    nodes.extend([planner, predictor])
    for node in (planner, predictor):
        executor.add_node(node)
    started = time.monotonic()
    if not (autostart(planner) and autostart(predictor)):
        print("dts-demo: error: a node failed to start (see the log above). With no trained "
              "model yet, pass --model-path PATH to a video model checkpoint.", file=sys.stderr)
        return 1
    print(f"dts-demo: nodes active after {time.monotonic() - started:.1f} s", flush=True)

    plans: dict[int, list[PlanRecord]] = defaultdict(list)
    last_plan: LatestSlot[VideoPlan] = LatestSlot()
    bridge = MetaWorldBridgeNode(parameter_overrides=[
        Parameter("sim.task", value=args.task), Parameter("sim.max_steps", value=args.max_steps),
        Parameter("sim.rate_hz", value=args.rate)])
    watcher = Node("dts_demo_watcher")
    nodes.extend([bridge, watcher])
    watcher.create_subscription(
        PlanDiagnostics, "plan_diagnostics",
        lambda m: plans[len(bridge.results)].append(PlanRecord(
            m.status, m.total_latency_s, m.sampling_time_s, m.nfe, m.depth, m.acceptance_rate)),
        100)
    watcher.create_subscription(VideoPlan, "plan", last_plan.put, 1)
    images: OrderedDict[tuple[int, int], Image] = OrderedDict()   # recent frames, for the GIF
    watcher.create_subscription(Image, "image", lambda m: remember(images, m), 10)
    for node in (bridge, watcher):
        executor.add_node(node)

    reported = 0
    deadline = time.monotonic() + args.timeout
    while reported < args.episodes and time.monotonic() < deadline:
        time.sleep(0.2)
        while reported < min(len(bridge.results), args.episodes):
            result = bridge.results[reported]
            print(f"episode {result.episode} (seed {result.seed}): "
                  f"{'SUCCESS' if result.success else 'failure'} in {result.steps} steps; "
                  f"{summarise(plans[reported])}", flush=True)
            reported += 1
    successes = sum(r.success for r in bridge.results[:reported])
    print(f"dts-demo: {successes}/{reported} successful episode(s) in "
          f"{time.monotonic() - started:.0f} s; sampler {planner.get_parameter('sampler').value}"
          f", device {device}")
    if reported < args.episodes:
        print(f"dts-demo: timed out after {args.timeout:.0f} s", file=sys.stderr)
    plan = last_plan.peek()
    if plan is not None:
        gif = Path(args.output) / "plan.gif"
        source = images.get((plan.header.stamp.sec, plan.header.stamp.nanosec))
        write_plan_gif(plan, source, gif)
        print(f"dts-demo: wrote {gif} and {gif.with_suffix('.png')} "
              f"(instruction: '{plan.instruction}')")
    return 0
