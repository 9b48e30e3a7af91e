"""Closed-loop Meta-World evaluation of the video policy (plan with a sampler, act, replan).

``python -m dts_planner.eval metaworld --tasks door-open push --seeds 1000:1010
--sampler ddpm dts --predictor optical_flow --out runs/eval/flow``

Methods: one per sampler spec (``name`` or ``name:key=value,...``, e.g. ``ddim:num_steps=10``)
for the plan-following predictors (``optical_flow``, ``diffusion_policy``); the spec ``oracle``
plans with the scripted expert's future frames instead of the video model (an upper bound for
the predictors). ``expert``, ``random`` and ``no_plan`` (the optical-flow predictor given the
current frame as its whole plan) need no video model. The speedup is DDPM-100's mean plan time
over the method's, both measured in this run (``ddpm`` among the samplers, or else one
timing-only DDPM-100 plan on the first observation of every episode). Writes episodes.jsonl (as
it goes), summary.md, summary.csv and one GIF per method.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from contextlib import ExitStack
from functools import partial
import itertools
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from tqdm import tqdm

from dts_planner.eval.closed_loop import EpisodeResult, PlanRecord, run_episode
from dts_planner.eval.oracle_plan import OraclePlanner
from dts_planner.eval.policy_report import (
    ALL_TASKS, markdown_table, summarize, write_csv, write_gif)
from dts_planner.sim import DEFAULT_TASKS, MetaWorldEnv, env_name, instruction_for

PLAN_PREDICTORS = ("optical_flow", "diffusion_policy")
ORACLE = "oracle"
"""Sampler spec meaning "no video model: the scripted expert's future frames"."""
PREDICTORS = (*PLAN_PREDICTORS, "expert", "random", "no_plan")


def parse_sampler(spec: str) -> tuple[str, dict[str, Any]]:
    """Split "dts:chunk=10,threshold=0.02" into ("dts", {"chunk": 10, "threshold": 0.02})."""
    name, _, rest = spec.partition(":")
    params = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return name, params


def parse_seeds(text: str) -> list[int]:
    """Seeds "1000:1010" (half-open range) or "3,5,8"."""
    if ":" in text:
        first, last = text.split(":")
        return list(range(int(first), int(last)))
    return [int(s) for s in text.split(",")]


def make_predictor(name: str, task: str, seed: int, policy: Any = None):
    """Build a fresh ActionPredictor for one episode."""
    if name in ("optical_flow", "no_plan"):
        from dts_planner.predictors.manipulation_flow_policy import (
            FlowManipulationPolicy, FlowPolicyConfig)
        return FlowManipulationPolicy(FlowPolicyConfig(seed=seed))
    if name == "diffusion_policy":
        from dts_planner.predictors.diffusion_policy_predictor import DiffusionPolicyPredictor
        return DiffusionPolicyPredictor(policy, seed=seed)
    if name == "expert":
        from dts_planner.predictors.baselines import ExpertPredictor
        return ExpertPredictor(env_name(task))
    if name == "random":
        from dts_planner.predictors.baselines import RandomPredictor
        return RandomPredictor(seed)
    raise ValueError(f"unknown predictor {name!r}; choose from {PREDICTORS}")


def video_plan(planner: Any, instruction: str, seed: int,
               observation: Any) -> tuple[np.ndarray, PlanRecord]:
    """Plan from the observation's image (seeded per episode and plan index)."""
    plan = planner.plan(observation.rgb, instruction, seed=seed)
    return plan.frames, PlanRecord(plan.sampling_time_s, plan.stats.nfe, plan.stats.depth)


def still_plan(num_frames: int, observation: Any) -> tuple[np.ndarray, None]:
    """Return the "no plan" baseline's plan: the current frame repeated, nothing imagined."""
    return np.repeat(observation.rgb[None], num_frames, axis=0), None


def build_planner(model_path: str | None, device: str) -> Any:
    """Build a VideoPlanner for a video model (None: the embedded default); sampler set later."""
    from dts_planner.diffusion import make_sampler
    from dts_planner.models import load_video_model
    from dts_planner.models.text_encoders import make_text_encoder
    from dts_planner.planning import VideoPlanner
    model = load_video_model(model_path, device=device)
    return VideoPlanner(model, make_text_encoder(model.config.text_encoder, device=device),
                        make_sampler("ddpm"), device=device)


def episode_record(method: str, episode: EpisodeResult, reference_s: list[float]) -> str:
    """One JSON line describing a finished episode (frames left out) and its DDPM timings."""
    return json.dumps({"method": method, "task": episode.task, "seed": episode.seed,
                       "success": episode.success, "steps": episode.steps,
                       "actions_in_space": episode.actions_in_space,
                       "plans": [vars(p) for p in episode.plans], "reference_s": reference_s})


def load_log(path: Path) -> tuple[dict[str, list[EpisodeResult]], dict[str, list[float]]]:
    """Read results and DDPM-100 reference times back from a (partial) run's episodes.jsonl."""
    results: dict[str, list[EpisodeResult]] = defaultdict(list)
    reference_times: dict[str, list[float]] = defaultdict(list)
    for line in Path(path).read_text().splitlines():
        record = json.loads(line)
        episode = EpisodeResult(record["task"], record["seed"], record["success"],
                                record["steps"], [PlanRecord(**p) for p in record["plans"]],
                                record["actions_in_space"])
        results[record["method"]].append(episode)
        reference_times[episode.task].extend(record["reference_s"])
    reference_times[ALL_TASKS] = [t for times in list(reference_times.values()) for t in times]
    return results, reference_times


def evaluate(args: argparse.Namespace, planner: Any = None, policy: Any = None,
             log: Path | None = None
             ) -> tuple[dict[str, list[EpisodeResult]], dict[str, list[float]]]:
    """Run every (method, task, seed) episode; return results and DDPM-100 reference times.

    Each finished episode is appended to `log` (JSON lines) so long runs can be followed.
    """
    from dts_planner.diffusion import make_sampler
    uses_plans = args.predictor in PLAN_PREDICTORS
    methods = ([(f"{args.predictor}/{spec}", *parse_sampler(spec)) for spec in args.sampler]
               if uses_plans else [(args.predictor, "", {})])
    has_ddpm = any(name == "ddpm" and not params for _, name, params in methods)
    reference = make_sampler("ddpm") if planner is not None and not has_ddpm else None
    results: dict[str, list[EpisodeResult]] = defaultdict(list)
    reference_times: dict[str, list[float]] = defaultdict(list)
    num_frames = planner.model.config.num_frames if planner is not None else 7
    # seeds outermost, methods innermost: a partial run has paired episodes on every task
    jobs = list(itertools.product(args.seeds, args.tasks, methods))
    for seed, task, (method, name, params) in tqdm(jobs, desc="episodes"):
        torch.manual_seed(seed)
        with MetaWorldEnv(task, camera=args.camera, seed=seed, resolution=args.resolution,
                          max_steps=args.max_steps) as env, ExitStack() as stack:
            plan = partial(still_plan, num_frames)
            reference_s = []
            if name == ORACLE:
                plan = stack.enter_context(OraclePlanner(env, num_frames))
            elif uses_plans:
                planner.sampler = make_sampler(name, **params)
                counter = itertools.count()
                plan = (lambda obs: video_plan(planner, instruction_for(task),
                                               1000 * seed + next(counter), obs))
            episode = run_episode(env, seed, make_predictor(args.predictor, task, seed, policy),
                                  plan, args.max_steps, args.max_plans,
                                  record=args.gif and not results[method])
            if reference is not None and method == methods[0][0]:
                planner.sampler = reference
                first = video_plan(planner, instruction_for(task), 1000 * seed, env.reset(seed))
                reference_s.append(first[1].time_s)
        if name == "ddpm" and not params:
            reference_s.extend(p.time_s for p in episode.plans)
        reference_times[episode.task].extend(reference_s)
        results[method].append(episode)
        if log is not None:
            with open(log, "a") as handle:
                handle.write(episode_record(method, episode, reference_s) + "\n")
    reference_times[ALL_TASKS] = [t for times in list(reference_times.values()) for t in times]
    return results, reference_times


def report(results: dict[str, list[EpisodeResult]], reference_times: dict[str, list[float]],
           out: Path) -> str:
    """Write summary.md, summary.csv and the GIFs under `out`; return the markdown table."""
    out.mkdir(parents=True, exist_ok=True)
    rows = summarize(results, reference_times)
    table = markdown_table(rows)
    (out / "summary.md").write_text(table)
    write_csv(rows, out / "summary.csv")
    for method, episodes in results.items():
        if episodes[0].frames:
            write_gif(episodes[0].frames, out / f"{method.replace('/', '_')}.gif")
    return table


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options of the Meta-World evaluation."""
    parser = argparse.ArgumentParser(prog="python -m dts_planner.eval metaworld",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", default=list(DEFAULT_TASKS))
    parser.add_argument("--seeds", type=parse_seeds, default=parse_seeds("1000:1010"),
                        help="task variations, e.g. 1000:1010 or 3,5 (>= 1000: held out)")
    parser.add_argument("--camera", default="corner")
    parser.add_argument("--resolution", type=int, default=64, help="camera pixels (square)")
    parser.add_argument("--sampler", nargs="+", default=["ddpm", "dts"],
                        help="sampler specs, e.g. ddpm ddim:num_steps=10 dts:chunk=10; "
                        "'oracle' plans with the scripted expert's future frames instead")
    parser.add_argument("--predictor", choices=PREDICTORS, default="optical_flow")
    parser.add_argument("--model", default=None, help="video model checkpoint (default: shipped)")
    parser.add_argument("--policy", default=None,
                        help="diffusion policy weights (default: shipped)")
    parser.add_argument("--max-steps", type=int, default=500)
    parser.add_argument("--max-plans", type=int, default=6, help="plans per episode (AVDC: 6)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (1 is fastest on a busy machine)")
    parser.add_argument("--no-gif", dest="gif", action="store_false")
    parser.add_argument("--out", type=Path, default=Path("runs/eval/metaworld"))
    parser.add_argument("--summarize", type=Path, default=None, metavar="EPISODES_JSONL",
                        help="only summarise the episodes logged by a (partial) run, next to it")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``python -m dts_planner.eval metaworld``."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.summarize is not None:
        print(report(*load_log(args.summarize), args.summarize.parent))
        return
    video = args.predictor in PLAN_PREDICTORS and any(
        parse_sampler(spec)[0] != ORACLE for spec in args.sampler)
    planner = build_planner(args.model, args.device) if video else None
    policy = None
    if args.predictor == "diffusion_policy":
        from dts_planner.predictors.diffusion_policy import load_policy
        from dts_planner.predictors.diffusion_policy_predictor import DEFAULT_POLICY_WEIGHTS
        policy = load_policy(args.policy or str(DEFAULT_POLICY_WEIGHTS), args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    results, reference_times = evaluate(args, planner, policy, args.out / "episodes.jsonl")
    print(report(results, reference_times, args.out))
    print(f"written to {args.out}/")


if __name__ == "__main__":
    main()
