"""`dts-demo`: the planner, action predictor and Meta-World bridge in one process, closed loop.

The demo runs Meta-World episodes through the ROS graph (`PolicyGraph`) with the embedded
default video model and prints per episode success, steps and plan cost, then the in-graph
sampling time beside the same sampler run alone on the same model (their ratio is what the
graph costs; every plan is replayed alone with its own input, seed and sampler), and writes a
GIF of the last plan.

    dts-demo                                  # 2 episodes of the default task on the CPU
    dts-demo --episodes 5 --sampler ddim:num_steps=10 --device cuda:0 --json runs/demo.json
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
import statistics
import sys
import time

import numpy as np
import torch

from dts_planner.common.images import write_gif, write_strip
from dts_planner.diffusion import parse_spec
from dts_planner.predictors import PLAN_KINDS
from dts_planner.ros import parameters
from dts_planner.ros.image_conversion import image_to_rgb, with_source_frame
from dts_planner.ros.policy_graph import GraphEpisode, PolicyGraph

DEFAULT_TASK = "door-close"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options (defaults finish in a few minutes on a 2-core CPU)."""
    parser = argparse.ArgumentParser(prog="dts-demo", description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=2, help="episodes to run (default 2)")
    parser.add_argument("--task", default=DEFAULT_TASK, help=f"Meta-World task ({DEFAULT_TASK})")
    parser.add_argument("--camera", default="corner", help="Meta-World camera (corner)")
    parser.add_argument("--seed", type=int, default=0,
                        help="task variation of the first episode; episode i uses seed + i")
    parser.add_argument("--max-steps", type=int, default=500,
                        help="steps per episode (500, Meta-World's limit)")
    parser.add_argument("--rate", type=float, default=60.0, help="simulation steps/s (60)")
    parser.add_argument("--device", default="auto",
                        help="torch device; auto = cuda:0 if CUDA is available, else cpu")
    parser.add_argument("--model-path", default="",
                        help="video model checkpoint (default: the embedded default model)")
    parser.add_argument("--model-preset", default="",
                        help="smoke test without weights: a RANDOM-weight model of this preset")
    parser.add_argument("--sampler", type=parse_spec, default=None,
                        help="sampler spec, e.g. dts or ddim:num_steps=10 (default: the params "
                        "file's)")
    parser.add_argument("--action-predictor", choices=PLAN_KINDS,
                        help="action predictor (default: the params file's)")
    parser.add_argument("--params-file", default=str(parameters.default_params_file()),
                        help="parameters YAML shared by the nodes")
    parser.add_argument("--output", default="runs/demo", help="folder for plan.gif (runs/demo)")
    parser.add_argument("--json", default="", metavar="PATH",
                        help="write per-episode success and steps and per-plan sampling times")
    parser.add_argument("--timeout", type=float, default=1800.0,
                        help="give up after this many seconds (1800)")
    return parser.parse_args(argv)


def pick_device(requested: str) -> str:
    """Resolve 'auto' to cuda:0 when CUDA is available, else cpu."""
    if requested != "auto":
        return requested
    return "cuda:0" if torch.cuda.is_available() else "cpu"


def summary(times: list[float]) -> dict[str, float]:
    """Median and p95 (s) of sampling times (NaN when empty)."""
    if not times:
        return {"median_s": math.nan, "p95_s": math.nan}
    return {"median_s": statistics.median(times), "p95_s": float(np.percentile(times, 95))}


def episode_line(episode: GraphEpisode) -> str:
    """One printed line per episode."""
    result, plans = episode.result, [p for p in episode.plans if p.status == 0]
    line = (f"episode seed {result.seed}: {'SUCCESS' if result.success else 'failure'} in "
            f"{result.steps} steps; plans {len(plans)}")
    if plans:
        acceptance = [p.acceptance for p in plans if not math.isnan(p.acceptance)]
        line += (f", sampling {statistics.median(p.sampling_time_s for p in plans):.2f} s "
                 f"(latency {statistics.median(p.latency_s for p in plans):.2f} s), "
                 f"NFE {statistics.median(p.nfe for p in plans):.0f}, "
                 f"depth {statistics.median(p.depth for p in plans):.0f}")
        if acceptance:
            line += f", acceptance {statistics.fmean(acceptance):.2f}"
    return line


def write_plan_gif(graph: PolicyGraph, folder: Path, scale: int = 4) -> tuple[Path, str] | None:
    """GIF and PNG strip of the last plan after its source frame; None if nothing was planned."""
    plan = graph.watcher.last_plan.peek()
    if plan is None:
        return None
    frames = np.stack([image_to_rgb(frame) for frame in plan.frames])
    source = graph.watcher.frames.get(plan.header.stamp.sec * 10**9 + plan.header.stamp.nanosec)
    if source is not None:
        frames = with_source_frame(image_to_rgb(source), frames)
    gif = folder / "plan.gif"
    write_gif(frames, gif, scale=scale)
    write_strip(frames, gif.with_suffix(".png"), scale=scale)
    return gif, plan.instruction


def main(argv: list[str] | None = None) -> int:
    """Run the closed-loop demo; exit code 0 when it ran (success or not), 1 on set-up errors."""
    args = parse_args(argv)
    device = pick_device(args.device)
    print(f"dts-demo: task {args.task}, {args.episodes} episode(s) from seed {args.seed}, "
          f"device {device}, params {args.params_file}", flush=True)
    planner = {"device": device, "model_path": args.model_path, "model_preset": args.model_preset}
    if args.sampler is not None:
        planner.update({"sampler": args.sampler.name, **args.sampler.to_flat()})
    predictor = {"device": device}
    if args.action_predictor:
        predictor["predictor.type"] = args.action_predictor
    started = time.monotonic()
    try:
        graph = PolicyGraph(args.params_file, planner, predictor)
    except (RuntimeError, parameters.ParameterError) as error:
        print(f"dts-demo: error: {error}. Check --model-path / --model-preset and --device.",
              file=sys.stderr)
        return 1
    with graph:
        print(f"dts-demo: nodes active after {time.monotonic() - started:.1f} s", flush=True)
        episodes = graph.run(args.task, args.camera, args.seed, args.episodes, args.max_steps,
                             args.rate, timeout_s=args.timeout)
        for episode in episodes:
            print(episode_line(episode), flush=True)
        successes = sum(e.result.success for e in episodes)
        sampler = graph.planner.get_parameter("sampler").value
        print(f"dts-demo: {successes}/{len(episodes)} successful episode(s) in "
              f"{time.monotonic() - started:.0f} s; sampler {sampler}, device {device}")
        if len(episodes) < args.episodes:
            print("dts-demo: stopped before all episodes finished", file=sys.stderr)
        report = {"task": args.task, "camera": args.camera, "sampler": sampler,
                  "device": device, "episodes": [
                      {"seed": e.result.seed, "success": e.result.success,
                       "steps": e.result.steps,
                       "plans": [{"status": p.status, "sampling_time_s": p.sampling_time_s,
                                  "latency_s": p.latency_s, "nfe": p.nfe, "depth": p.depth,
                                  "acceptance": p.acceptance} for p in e.plans]}
                      for e in episodes]}
        in_graph = [p.sampling_time_s for e in episodes for p in e.plans if p.status == 0]
        written = write_plan_gif(graph, Path(args.output))
        if written is not None and not graph.stop.requested:
            gif, instruction = written
            print(f"dts-demo: wrote {gif} and {gif.with_suffix('.png')} "
                  f"(instruction: '{instruction}')")
            alone = graph.standalone_sampling_s()
            report["sampling"] = {"in_graph": summary(in_graph), "standalone": summary(alone),
                                  "standalone_times_s": alone}
            ratio = summary(in_graph)["median_s"] / summary(alone)["median_s"]
            report["sampling"]["ratio_median"] = ratio
            print(f"dts-demo: sampling in the graph {summary(in_graph)['median_s']:.3f} s "
                  f"(p95 {summary(in_graph)['p95_s']:.3f} s, {len(in_graph)} plans); the same "
                  f"sampler alone {summary(alone)['median_s']:.3f} s ({len(alone)} plans): "
                  f"ratio {ratio:.2f}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        print(f"dts-demo: wrote {args.json}")
    return 0
