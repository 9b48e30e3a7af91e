"""Closed-loop Meta-World evaluation of the video policy (plan with a sampler, act, replan).

``python -m dts_planner.eval metaworld --tasks door-open push --cameras corner --seeds
1000:1010 --sampler ddpm dts --predictor optical_flow --out runs/eval/flow``

Methods: one per sampler spec (``name`` or ``name:key=value,...``, e.g. ``ddim:num_steps=10``;
the grammar of `dts_planner.diffusion.parse_spec`) for the plan-following predictors
(``optical_flow``, ``diffusion_policy``); the spec ``oracle`` plans with the scripted expert's
future frames instead of the video model (an upper bound for the predictors). ``expert``,
``random`` and ``no_plan`` (the default predictor given the current frame as its whole plan)
need no video model. The closed-loop rules are `dts_planner.policy`'s, the ones the ROS graph
runs; ``--via ros`` runs the same episodes through the ROS nodes (planner, action predictor,
Meta-World bridge in one process) and reports them in the same table, so one command compares
the two paths. The speedup is DDPM-100's mean plan time over the method's, both measured in this
run (``ddpm`` among the samplers, or else one timing-only DDPM-100 plan on the first observation
of every episode). Writes episodes.jsonl (as it goes; a rerun with the same --out skips the
episodes already there), summary.md, table2.md (the DTS paper's Table 2 layout: Wilson
intervals, paired comparison with DDPM-100), summary.csv and one GIF per method.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from contextlib import ExitStack
from dataclasses import dataclass
import itertools
import json
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, Union

import numpy as np
import torch
from tqdm import tqdm

from dts_planner.common.seeds import parse_seeds
from dts_planner.diffusion import DDPMSettings, parse_spec, SamplerSettings
from dts_planner.eval.closed_loop import EpisodeResult, PlanRecord, run_episode
from dts_planner.eval.oracle_plan import OraclePlanner
from dts_planner.eval.policy_report import (
    ALL_TASKS, markdown_table, paper_table, summarize, write_csv, write_gif)
from dts_planner.planning.sampler_choice import SamplerChoice
from dts_planner.policy import ClosedLoopPolicy, LoopRules, plan_seed
from dts_planner.predictors import (
    DEFAULT_KIND, make_predictor, PLAN_KINDS, PREDICTOR_KINDS, required_parts)
from dts_planner.sim import AVDC_CAMERAS, AVDC_TASKS, instruction_for, task_key

ORACLE = "oracle"
"""Sampler spec meaning "no video model: the scripted expert's future frames"."""


def parse_method(spec: str) -> SamplerSettings | str:
    """Parse a sampler spec (parse_spec's grammar) or ORACLE; argparse-friendly errors."""
    if spec == ORACLE:
        return ORACLE
    try:
        return parse_spec(spec)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def video_plan(planner: Any, instruction: str, observation: Any,
               seed: int | None) -> tuple[np.ndarray, PlanRecord]:
    """Plan from the observation's image with noise seed `seed`."""
    plan = planner.plan(observation.rgb, instruction, seed=seed)
    return plan.frames, PlanRecord(plan.sampling_time_s, plan.stats.nfe, plan.stats.depth)


def budget_plan(planner: Any, choice: SamplerChoice, budget_s: float, instruction: str,
                observation: Any, seed: int | None) -> tuple[np.ndarray, PlanRecord]:
    """Plan with the calibrated configuration that fits `budget_s` (as the planner node does)."""
    chosen = choice.for_plan(DDPMSettings(), budget_s)
    planner.sampler = choice.sampler(chosen.settings)
    frames, record = video_plan(planner, instruction, observation, seed)
    choice.observe(chosen, record.time_s)
    return frames, record


def _sampler_choice(args: argparse.Namespace) -> SamplerChoice:
    """Return the evaluated model's SamplerChoice, as the planner node builds it.

    Its calibration (if any) gives auto DTS thresholds and the budget methods' choices
    (SystemExit for --budgets without a calibration).
    """
    from dts_planner.planning.factory import find_model_calibration
    calibration, note = find_model_calibration(args.model or "", "", "", args.device)
    if calibration is None and args.budgets:
        raise SystemExit(f"--budgets needs a calibration of the model: {note}")
    return SamplerChoice(calibration, note)


def still_plan(num_frames: int, observation: Any, seed: int | None) -> tuple[np.ndarray, None]:
    """Return the "no plan" baseline's plan: the current frame repeated, nothing imagined."""
    return np.repeat(observation.rgb[None], num_frames, axis=0), None


@dataclass(frozen=True)
class Budget:
    """A latency-budget method: each plan takes the calibrated configuration that fits `s`."""

    s: float

    def __str__(self) -> str:
        """Return the name in tables, e.g. budget-0.4s."""
        return f"budget-{self.s:g}s"


Method = Union[SamplerSettings, Budget, str]
"""A sampler's settings, a latency budget, ORACLE, or "" (a baseline that plans nothing)."""


def method_name(predictor: str, method: Method) -> str:
    """Table name of a method: "<predictor>/<spec>" (or the predictor for the baselines)."""
    if method == "":
        return predictor
    return f"{predictor}/{method.spec() if isinstance(method, SamplerSettings) else method}"


def episode_record(method: str, episode: EpisodeResult, reference_s: list[float]) -> str:
    """One JSON line describing a finished episode (frames left out) and its DDPM timings."""
    return json.dumps({"method": method, "task": episode.task, "camera": episode.camera,
                       "seed": episode.seed, "success": episode.success,
                       "steps": episode.steps, "actions_in_space": episode.actions_in_space,
                       "plans": [vars(p) for p in episode.plans], "reference_s": reference_s})


def load_log(path: Path) -> tuple[dict[str, list[EpisodeResult]], dict[str, list[float]]]:
    """Read results and DDPM-100 reference times back from a (partial) run's episodes.jsonl."""
    results: dict[str, list[EpisodeResult]] = defaultdict(list)
    reference_times: dict[str, list[float]] = defaultdict(list)
    for line in Path(path).read_text().splitlines():
        record = json.loads(line)
        episode = EpisodeResult(record["task"], record["seed"], record["success"],
                                record["steps"], [PlanRecord(**p) for p in record["plans"]],
                                record["actions_in_space"], camera=record.get("camera", ""))
        results[record["method"]].append(episode)
        reference_times[episode.task].extend(record["reference_s"])
    reference_times[ALL_TASKS] = [t for times in list(reference_times.values()) for t in times]
    return results, reference_times


Job = tuple[int, str, str, str, "SamplerSettings | str"]
"""(seed, task, camera, method name, sampler settings | ORACLE | "")."""


def plan_jobs(args: argparse.Namespace) -> list[Job]:
    """Every (seed, task, camera, method) episode; seeds outermost so partial runs are paired."""
    methods = ([*args.sampler, *map(Budget, args.budgets)] if args.predictor in PLAN_KINDS
               else [""])
    return [(seed, task, camera, method_name(args.predictor, method), method)
            for seed, task, camera, method in itertools.product(
                args.seeds, args.tasks, args.cameras, methods)]


class EpisodeLog:
    """A run's episodes: appended to episodes.jsonl as they finish, resumed from it.

    Both drivers (`evaluate` here, `dts_planner.ros.policy_graph.evaluate_via_ros`) keep
    their episodes here, so a run can be stopped and continued with the same --out.
    """

    def __init__(self, path: Path | None) -> None:
        """Log to `path` (None: keep the episodes in memory only)."""
        self.path = path
        self._done = set()
        if path is not None and path.exists():
            self._done = {(r["seed"], r["task"], r.get("camera", ""), r["method"])
                          for r in map(json.loads, path.read_text().splitlines())}
        self.results: dict[str, list[EpisodeResult]] = defaultdict(list)
        self.reference_times: dict[str, list[float]] = defaultdict(list)

    def todo(self, jobs: list[Job]) -> list[Job]:
        """Return the jobs whose episode is not in the log yet."""
        return [job for job in jobs
                if (job[0], task_key(job[1]), job[2], job[3]) not in self._done]

    def add(self, method: str, episode: EpisodeResult, settings: Any,
            reference_s: list[float]) -> None:
        """Keep a finished episode and its DDPM-100 reference times; append it to the file."""
        if isinstance(settings, SamplerSettings) and settings == DDPMSettings():
            reference_s = reference_s + [p.time_s for p in episode.plans]
        self.reference_times[episode.task].extend(reference_s)
        self.results[method].append(episode)
        if self.path is not None:
            with open(self.path, "a") as handle:
                handle.write(episode_record(method, episode, reference_s) + "\n")

    def all(self) -> tuple[dict[str, list[EpisodeResult]], dict[str, list[float]]]:
        """Return this run's episodes plus the file's earlier ones (this run's keep frames)."""
        if self.path is None or not self.path.exists():
            reference = dict(self.reference_times)
            reference[ALL_TASKS] = [t for times in self.reference_times.values() for t in times]
            return dict(self.results), reference
        logged, logged_reference = load_log(self.path)
        fresh = {(method, e.seed, e.task, e.camera): e
                 for method, episodes in self.results.items() for e in episodes}
        for method, episodes in logged.items():
            logged[method] = [fresh.get((method, e.seed, e.task, e.camera), e)
                              for e in episodes]
        return logged, logged_reference


def evaluate(args: argparse.Namespace, planner: Any = None,
             log: EpisodeLog | None = None) -> tuple[dict[str, list[EpisodeResult]],
                                                     dict[str, list[float]]]:
    """Run every episode in this process; return results and DDPM-100 reference times."""
    log = log or EpisodeLog(None)
    reference = _needs_reference(args, planner)
    num_frames = planner.model.config.num_frames if planner is not None else 7
    predictors: dict[str, Any] = {}
    all_jobs = plan_jobs(args)
    choice = _sampler_choice(args) if planner is not None else None
    for seed, task, camera, method, settings in tqdm(log.todo(all_jobs), desc="episodes"):
        key = task if args.predictor == "expert" else ""
        if key not in predictors:
            predictors[key] = make_predictor(args.predictor, checkpoint_path=args.policy or "",
                                             device=args.device, task=task)
        policy = ClosedLoopPolicy(predictors[key], LoopRules(max_plans=args.max_plans))
        torch.manual_seed(seed)
        reference_s = []
        with _environment(task, camera, seed, args) as env, ExitStack() as stack:
            plan: Callable = lambda obs, noise_seed: still_plan(num_frames, obs, noise_seed)
            if settings == ORACLE:
                oracle = stack.enter_context(OraclePlanner(env, num_frames))
                plan = lambda obs, noise_seed: oracle(obs)    # noqa: E731
            elif isinstance(settings, SamplerSettings):   # auto DTS thresholds as the node
                planner.sampler = choice.sampler(choice.resolve(settings)[0])
                plan = lambda obs, noise_seed: video_plan(      # noqa: E731
                    planner, instruction_for(task), obs, noise_seed)
            elif isinstance(settings, Budget):
                plan = lambda obs, noise_seed: budget_plan(     # noqa: E731
                    planner, choice, settings.s, instruction_for(task), obs, noise_seed)
            episode = run_episode(env, seed, policy, plan, args.max_steps,
                                  record=args.gif and not log.results[method])
            if reference and method == all_jobs[0][3]:
                planner.sampler = DDPMSettings().build()
                reference_s.append(video_plan(planner, instruction_for(task), env.reset(seed),
                                              plan_seed(seed, 0))[1].time_s)
        log.add(method, episode, settings, reference_s)
    return log.all()


def _needs_reference(args: argparse.Namespace, planner: Any) -> bool:
    """Whether to time one DDPM-100 plan per episode (no plain ddpm method in the run)."""
    return planner is not None and args.reference and not any(
        isinstance(s, SamplerSettings) and s == DDPMSettings() for s in args.sampler)


def _environment(task: str, camera: str, seed: int, args: argparse.Namespace) -> Any:
    from dts_planner.sim import MetaWorldEnv
    return MetaWorldEnv(task, camera=camera, seed=seed, resolution=args.resolution,
                        max_steps=args.max_steps, depth_views=bool(
                            required_parts(args.predictor) & {"depth", "object_mask"}))


def report(results: dict[str, list[EpisodeResult]], reference_times: dict[str, list[float]],
           out: Path) -> str:
    """Write summary.md, table2.md, summary.csv and the GIFs under `out`; return the summary."""
    out.mkdir(parents=True, exist_ok=True)
    rows = summarize(results, reference_times)
    table = markdown_table(rows)
    (out / "summary.md").write_text(table)
    reference = next((method for method in results if method.endswith("/ddpm")), "")
    (out / "table2.md").write_text(paper_table(results, reference_times, reference))
    write_csv(rows, out / "summary.csv")
    for method, episodes in results.items():
        if episodes[0].frames:
            write_gif(episodes[0].frames, out / f"{method.replace('/', '_')}.gif")
    return table


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options of the Meta-World evaluation."""
    parser = argparse.ArgumentParser(prog="python -m dts_planner.eval metaworld",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", default=list(AVDC_TASKS),
                        help="Meta-World tasks (default: AVDC's 11)")
    parser.add_argument("--cameras", nargs="+", default=list(AVDC_CAMERAS),
                        help="cameras (default: AVDC's corner, corner2, corner3)")
    parser.add_argument("--seeds", type=parse_seeds, default=parse_seeds("1000:1010"),
                        help="task variations, e.g. 1000:1010 or 3,5 (>= 1000: held out)")
    parser.add_argument("--resolution", type=int, default=64, help="camera pixels (square)")
    parser.add_argument("--sampler", nargs="+", type=parse_method,
                        default=[parse_method("ddpm"), parse_method("dts")],
                        help="sampler specs, e.g. ddpm ddim:num_steps=10 dts:chunk=10; "
                        "'oracle' plans with the scripted expert's future frames instead")
    parser.add_argument("--budgets", nargs="*", type=float, default=[], metavar="S",
                        help="latency-budget methods: each plan uses the calibrated "
                        "configuration that fits S seconds (needs the model's calibration)")
    parser.add_argument("--predictor", choices=PREDICTOR_KINDS, default=DEFAULT_KIND)
    parser.add_argument("--model", default=None, help="video model checkpoint (default: shipped)")
    parser.add_argument("--policy", default=None,
                        help="diffusion policy weights (default: shipped)")
    parser.add_argument("--max-steps", type=int, default=500)
    parser.add_argument("--max-plans", type=int, default=6, help="plans per episode (AVDC: 6)")
    parser.add_argument("--via", choices=("direct", "ros"), default="direct",
                        help="direct: this process drives the simulator; ros: the same "
                        "episodes through the ROS nodes")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (1 is fastest on a busy machine)")
    parser.add_argument("--no-gif", dest="gif", action="store_false")
    parser.add_argument("--no-reference", dest="reference", action="store_false",
                        help="skip the timing-only DDPM-100 plans (no speedup column)")
    parser.add_argument("--out", type=Path, default=Path("runs/eval/metaworld"))
    parser.add_argument("--summarize", type=Path, default=None, metavar="EPISODES_JSONL",
                        help="only summarise the episodes logged by a (partial) run, next to it")
    return parser.parse_args(argv)


Driver = Callable[[argparse.Namespace, EpisodeLog], tuple[dict, dict]]
"""Runs the episodes of parsed args into a log; returns (results, reference times)."""


def run_direct(args: argparse.Namespace, log: EpisodeLog) -> tuple[dict, dict]:
    """Drive directly: this process runs the simulator, the planner and the predictor."""
    planner = None
    if args.predictor in PLAN_KINDS and any(isinstance(s, SamplerSettings)
                                            for s in args.sampler):
        from dts_planner.planning.factory import build_planner
        planner = build_planner(args.model or "", "", 0, "default", DDPMSettings().build(),
                                torch.device(args.device))[0]
    return evaluate(args, planner, log)


def main(argv: Sequence[str] | None = None,
         drivers: Mapping[str, Driver] | None = None) -> None:
    """Entry point of ``python -m dts_planner.eval metaworld``.

    drivers: the `--via` choices besides "direct"; the command dispatcher
    (`dts_planner.eval.__main__`, the composition root) adds "ros".
    """
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.summarize is not None:
        print(report(*load_log(args.summarize), args.summarize.parent))
        return
    drivers = {"direct": run_direct, **(drivers or {})}
    if args.via not in drivers:
        raise SystemExit(f"--via {args.via}: not available here (choices: {', '.join(drivers)})")
    args.out.mkdir(parents=True, exist_ok=True)
    results, reference_times = drivers[args.via](args, EpisodeLog(args.out / "episodes.jsonl"))
    print(report(results, reference_times, args.out))
    print(f"written to {args.out}/")


if __name__ == "__main__":
    main()
