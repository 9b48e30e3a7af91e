"""The video policy as a ROS graph in one process: planner, action predictor, Meta-World bridge.

`dts-demo` and `python -m dts_planner.eval metaworld --via ros` (`evaluate_via_ros`) run
their episodes through this graph, so what they report is what the nodes do: the planner plans
on the predictor's requests, the predictor runs the closed-loop rules shared with the
evaluation (`dts_planner.policy`), the bridge steps Meta-World in lockstep (it waits for each
chunk, as the evaluation's world waits for each plan). One SingleThreadedExecutor serves every
callback on a background thread; model work runs on the process's compute thread. Episode
seeds and plan seeds are the evaluation's, so the graph repeats the evaluation's episodes.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
import threading
import time
from typing import Any, Mapping

from dts_msgs.msg import EpisodeStatus, PlanDiagnostics, VideoPlan
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import Image
from tqdm import tqdm

from dts_planner.diffusion import SamplerSettings
from dts_planner.eval.closed_loop import EpisodeResult, PlanRecord
from dts_planner.eval.metaworld import Budget, EpisodeLog, ORACLE, plan_jobs
from dts_planner.predictors import PLAN_KINDS
from dts_planner.ros import parameters
from dts_planner.ros.action_predictor_node import ActionPredictorNode
from dts_planner.ros.compute import compute_thread
from dts_planner.ros.image_conversion import image_to_rgb
from dts_planner.ros.metaworld_bridge_node import MetaWorldBridgeNode
from dts_planner.ros.planner_node import PlannerNode
from dts_planner.ros.spin import (
    autostart, cancel_transitions, shutdown, SPIN_PERIOD_S, StopRequest)
from dts_planner.ros.stamps import stamp_ns
from dts_planner.ros.worker import LatestSlot


def overrides(values: Mapping[str, Any]) -> list[Parameter]:
    """Parameter overrides from a {name: value} mapping."""
    return [Parameter(name, value=value) for name, value in values.items()]


@dataclass
class PlanReport:
    """What the graph keeps of one PlanDiagnostics: its source stamp, status and costs."""

    stamp_ns: int
    status: int
    sampling_time_s: float
    latency_s: float
    nfe: int
    depth: int
    acceptance: float
    sampler: str
    seed: int = -1

    def record(self) -> PlanRecord:
        """Return the evaluation's record of this plan."""
        return PlanRecord(self.sampling_time_s, self.nfe, self.depth)


REPLAYED_PLANS = 128
"""Plans whose inputs are kept for `standalone_sampling_s` (bounded: long evaluations)."""


class _Watcher(Node):
    """Records plan diagnostics, episode starts, the last plan and recent camera frames."""

    def __init__(self, context: Context) -> None:
        super().__init__("dts_policy_watcher", context=context)
        self.lock = threading.Lock()
        self.reports: list[PlanReport] = []
        self.episode_starts: list[int] = []
        # (source frame, instruction, seed) of the latest plans, for a replay alone
        self.plan_inputs: deque[tuple[Image, str, int]] = deque(maxlen=REPLAYED_PLANS)
        self.last_plan: LatestSlot[VideoPlan] = LatestSlot()
        self.frames: dict[int, Image] = {}
        self.create_subscription(PlanDiagnostics, "plan_diagnostics", self._on_report, 100)
        self.create_subscription(EpisodeStatus, "episode_status", self._on_status, 100)
        self.create_subscription(VideoPlan, "plan", self._on_plan, 10)
        self.create_subscription(Image, "image", self._on_image, 10)

    def _on_report(self, msg: PlanDiagnostics) -> None:
        stamp = stamp_ns(msg.header.stamp)
        with self.lock:
            self.reports.append(PlanReport(
                stamp, msg.status, msg.sampling_time_s, msg.total_latency_s, msg.nfe,
                msg.depth, msg.acceptance_rate, msg.sampler, msg.seed))

    def _on_plan(self, msg: VideoPlan) -> None:
        """Keep the plan, and its input (source frame, instruction, seed) for a replay."""
        self.last_plan.put(msg)
        with self.lock:
            frame = self.frames.get(stamp_ns(msg.header.stamp))
            if frame is not None:
                self.plan_inputs.append((frame, msg.instruction, msg.diagnostics.seed))

    def _on_status(self, msg: EpisodeStatus) -> None:
        start = stamp_ns(msg.episode_start)
        with self.lock:
            if not self.episode_starts or self.episode_starts[-1] != start:
                self.episode_starts.append(start)

    def _on_image(self, msg: Image) -> None:
        with self.lock:
            self.frames[stamp_ns(msg.header.stamp)] = msg
            while len(self.frames) > 64:
                self.frames.pop(next(iter(self.frames)))


@dataclass
class GraphEpisode:
    """One episode run through the graph and the plans made for it."""

    result: EpisodeResult
    plans: list[PlanReport]


class PolicyGraph:
    """Planner + action predictor (+ one bridge per run) in one process; context manager."""

    def __init__(self, params_file: str, planner: Mapping[str, Any],
                 predictor: Mapping[str, Any], bridge: Mapping[str, Any] | None = None) -> None:
        """Start the nodes with the params file plus `planner` / `predictor` overrides.

        `bridge`: overrides for every bridge `run` makes.

        Raises RuntimeError when a node fails to configure or activate (it logged why).
        """
        self.bridge_overrides = dict(bridge or {})
        self.context = Context()
        rclpy.init(context=self.context, args=["--ros-args", "--params-file", params_file],
                   signal_handler_options=SignalHandlerOptions.NO)
        self.nodes: list[Node] = []
        self.stop = StopRequest(lambda: cancel_transitions(self.nodes))
        self.executor = SingleThreadedExecutor(context=self.context)
        self._spinner = threading.Thread(target=self._spin, name="dts-executor", daemon=True)
        self._spinner.start()
        self.planner = self._add(PlannerNode(context=self.context, parameter_overrides=overrides(
            {**planner, "autostart": False})))
        self.predictor = self._add(ActionPredictorNode(
            context=self.context, parameter_overrides=overrides(
                {"predictor.episode_source": "simulator", **predictor, "autostart": False})))
        self.watcher = self._add(_Watcher(self.context))
        for node in (self.planner, self.predictor):
            if not autostart(node):
                name = node.get_name()
                self.close()
                raise RuntimeError(f"the {name} node failed to start (see the log above)")

    def _add(self, node: Node) -> Any:
        self.nodes.append(node)
        self.executor.add_node(node)
        return node

    def _spin(self) -> None:
        while self.context.ok() and not self.stop.requested:
            try:
                self.executor.spin_once(timeout_sec=SPIN_PERIOD_S)
            except rclpy.executors.ExternalShutdownException:
                return

    def set_planner(self, values: Mapping[str, Any]) -> None:
        """Set planner parameters (ValueError with the node's reason if refused)."""
        for result in self.planner.set_parameters(overrides(values)):
            if not result.successful:
                raise ValueError(result.reason)

    def set_sampler(self, settings: SamplerSettings) -> None:
        """Use `settings` for the next plans (through the node's parameter validation)."""
        self.set_planner({"sampler": settings.name, **settings.to_flat()})

    def run(self, task: str, camera: str, seed: int, episodes: int = 1, max_steps: int = 500,
            rate_hz: float = 1000.0, resolution: int = 64,
            timeout_s: float = 3600.0) -> list[GraphEpisode]:
        """Run `episodes` episodes (seeds seed, seed + 1, ...) with a new bridge; wait for them.

        Stops early on a stop request (SIGINT/SIGTERM) or after `timeout_s`; returns the
        episodes that finished.
        """
        with self.watcher.lock:
            self.watcher.reports.clear()
            self.watcher.episode_starts.clear()
        bridge = self._add(MetaWorldBridgeNode(
            context=self.context, parameter_overrides=overrides({
                "sim.task": task, "sim.camera": camera, "sim.seed": seed,
                "sim.episodes": episodes, "sim.max_steps": max_steps, "sim.rate_hz": rate_hz,
                "sim.resolution": resolution, "sim.wait_for_actions": True,
                **self.bridge_overrides})))
        deadline = time.monotonic() + timeout_s
        try:
            while (len(bridge.results) < episodes and not self.stop.requested
                   and time.monotonic() < deadline):
                time.sleep(0.05)
        finally:
            self.nodes.remove(bridge)
            self.executor.remove_node(bridge)
            bridge.destroy_node()
        return self._episodes(list(bridge.results))

    def _episodes(self, results: list[EpisodeResult]) -> list[GraphEpisode]:
        """Pair each result with the plans whose source frame lies in its episode."""
        with self.watcher.lock:
            starts, reports = list(self.watcher.episode_starts), list(self.watcher.reports)
        bounds = [*starts[1:len(results)], None]
        return [GraphEpisode(result, [r for r in reports if r.stamp_ns >= start
                                      and (end is None or r.stamp_ns < end)])
                for result, start, end in zip(results, starts, bounds)]

    def standalone_sampling_s(self) -> list[float]:
        """Replay the graph's plans alone: sampling times (s), same inputs, seeds and sampler.

        Every plan made in the graph (the latest REPLAYED_PLANS: source frame, instruction,
        noise seed) runs again on the compute thread while the graph is idle, with the sampler
        the planner used: the same work (DTS's rounds depend on the input) without the graph.
        """
        planner = self.planner.video_planner
        with self.watcher.lock:
            inputs = list(self.watcher.plan_inputs)
        return [compute_thread().call(planner.plan, image_to_rgb(frame), instruction,
                                      seed=None if seed < 0 else seed).sampling_time_s
                for frame, instruction, seed in inputs]

    def close(self) -> None:
        """Destroy the nodes, stop the executor and the compute thread, end the context."""
        self.stop.request()
        self._spinner.join(timeout=5.0)
        shutdown(self.executor, self.nodes, self.context)
        self.nodes = []
        self.stop.restore()

    def __enter__(self) -> PolicyGraph:
        """Use as a context manager that closes the graph."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the graph."""
        self.close()


def evaluate_via_ros(args: Any, log: EpisodeLog,
                     bridge: Mapping[str, Any] | None = None) -> tuple[dict, dict]:
    """`eval metaworld --via ros`: the evaluation's episodes, driven through the nodes.

    Same jobs, seeds, rules and log as the direct driver; each episode gets its own bridge
    (the task variation is a start-up parameter), the planner's sampler is set per method
    through its parameters. The table's plan times are the in-graph sampling times.
    `bridge`: extra bridge parameters (tests re-publish the paused state every 20 ms).
    """
    if args.predictor not in PLAN_KINDS or ORACLE in args.sampler:
        raise SystemExit(f"--via ros runs the video model: --predictor {' | '.join(PLAN_KINDS)} "
                         "with sampler specs (no oracle)")
    planner = {"device": args.device, "model_path": args.model or "", "seed": -1}
    predictor = {"device": args.device, "predictor.type": args.predictor,
                 "predictor.checkpoint_path": args.policy or "",
                 "predictor.max_plans": args.max_plans, "predictor.max_plan_age_s": 3600.0}
    with PolicyGraph(str(parameters.default_params_file()), planner, predictor,
                     bridge) as graph:
        for seed, task, camera, method, settings in tqdm(log.todo(plan_jobs(args)),
                                                         desc="episodes (ROS)"):
            if isinstance(settings, Budget):
                graph.set_planner({"latency_budget_s": settings.s})
            else:
                graph.set_planner({"latency_budget_s": 0.0})
                graph.set_sampler(settings)
            runs = graph.run(task, camera, seed, max_steps=args.max_steps,
                             resolution=args.resolution)
            if not runs:
                break    # stopped (SIGINT / SIGTERM)
            episode = runs[0].result
            episode.plans = [p.record() for p in runs[0].plans if p.status == 0]
            log.add(method, episode, settings, [])
    return log.all()
