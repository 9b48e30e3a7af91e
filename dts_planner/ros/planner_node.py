"""Video planner lifecycle node: camera `image` + `instruction` -> `plan`, `plan_diagnostics`.

Thin adapter over `dts_planner.planning.VideoPlanner`. Subscription callbacks only check and
store the latest frame and instruction; one worker thread decides when to plan, and the
process's compute thread (`dts_planner.ros.compute`) runs the model, so sampling runs at its
standalone speed and model calls are never concurrent. A plan in flight stops between two model
calls when the node deactivates or shuts down. See docs/ros_interface.md for the interface.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
import time
from typing import Any, NoReturn
import uuid

from dts_msgs.msg import Instruction, PlanDiagnostics, VideoPlan
from dts_msgs.srv import RequestPlan
import numpy as np
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.time import Time
from sensor_msgs.msg import Image
import torch

from dts_planner.diffusion import (
    NoiseSchedule, NonFiniteOutputError, SamplerStats, SamplingCancelled)
from dts_planner.planning import Plan, VideoPlanner
from dts_planner.planning.factory import (
    build_planner, check_model_source, find_model_calibration)
from dts_planner.planning.sampler_choice import PlanSampler, SamplerChoice
from dts_planner.ros import parameters, planner_parameters
from dts_planner.ros.compute import compute_thread
from dts_planner.ros.device import (
    compute_precision, describe_device, free_memory, resolve_dtype, select_device)
from dts_planner.common.images import tile_frames
from dts_planner.ros.image_conversion import (
    check_image, image_to_rgb, ImageConversionError, rgb_to_image, with_source_frame)
from dts_planner.ros.qos import latched_qos, make_qos
from dts_planner.ros.spin import run_nodes
from dts_planner.ros.stamps import NS_PER_S, stamp_ns, stamp_problem
from dts_planner.ros.worker import LatestSlot
from dts_planner.ros.worker_node import LOG_THROTTLE_S, WorkerLifecycleNode

_SAMPLER_PREFIXES = tuple(f"{name}." for name in planner_parameters.SAMPLERS) + ("sampler",)


@dataclass(frozen=True)
class ReceivedImage:
    """A camera message, its stamp (ns) and when it arrived (node clock; time.monotonic() s)."""

    msg: Image
    stamp_ns: int
    received: Time
    received_mono: float


@dataclass(frozen=True)
class Request:
    """A pending `request_plan` call: plan from a frame stamped >= min_stamp_ns with `seed`."""

    min_stamp_ns: int
    seed: int | None


def image_age_s(stamp: Time, received: Time, now: Time) -> float:
    """Seconds since acquisition; an unset (zero) stamp counts from reception instead."""
    start = received if stamp.nanoseconds == 0 else stamp
    return (now - start).nanoseconds / 1e9


def fill_diagnostics(msg: PlanDiagnostics, stats: SamplerStats) -> None:
    """Copy sampler counts into `msg`: token counts summed over the batch, distances of row 0."""
    msg.sampler = stats.sampler
    msg.nfe, msg.depth = stats.nfe, stats.depth
    msg.draft_calls, msg.target_calls, msg.rounds = (
        stats.draft_calls, stats.target_calls, stats.rounds)
    msg.accepted_per_round = [int(sum(r)) for r in stats.accepted_per_round]
    msg.rejected_per_round = [int(sum(r)) for r in stats.rejected_per_round]
    msg.accepted_tokens = sum(msg.accepted_per_round)
    msg.rejected_tokens = sum(msg.rejected_per_round)
    verified = msg.accepted_tokens + msg.rejected_tokens
    msg.acceptance_rate = msg.accepted_tokens / verified if verified else math.nan
    msg.thresholds = [float(x) for x in stats.thresholds]
    msg.distances = [float(d) for per_round in stats.distances
                     for d in (per_round[0] if per_round else [])]


class PlannerNode(WorkerLifecycleNode):
    """Lifecycle node that turns the latest camera frame and instruction into a video plan."""

    status_name = "video planner"

    def __init__(self, node_name: str = "planner", **kwargs: Any) -> None:
        """Declare parameters and the /diagnostics publisher; nothing is loaded until activate."""
        self._images: LatestSlot[ReceivedImage] = LatestSlot()
        self._instructions: LatestSlot[Instruction] = LatestSlot()
        self._instruction: Instruction | None = None
        self._requests: LatestSlot[Request] = LatestSlot()
        self._request: Request | None = None      # taken by the worker, not yet planned
        self._in_flight: Request | None = None
        self._sampling_since: float | None = None   # monotonic s the plan in flight started
        self._reported: tuple[int, int] = (-1, -1)   # (image stamp, status) last rejected
        self._last_plan_mono = -math.inf
        self._planner: VideoPlanner | None = None
        self._choice: SamplerChoice | None = None
        self._plan_sampler: PlanSampler | None = None
        self._device = torch.device("cpu")
        self._dtype = torch.float32
        self._model_id = ""
        super().__init__(node_name, planner_parameters.PLANNER_PARAMS, **kwargs)
        self.add_on_set_parameters_callback(self._validate_update)

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Validate every parameter, the device and the model source; create the publishers."""
        values = parameters.current(self, planner_parameters.PLANNER_PARAMS)
        reasons = parameters.check_values(planner_parameters.PLANNER_PARAMS, values)
        reasons += planner_parameters.sampler_reasons(values, NoiseSchedule.avdc())
        warning = ""
        try:
            self._device, warning = select_device(values["device"], values["allow_cpu_fallback"])
            resolve_dtype(values["dtype"], self._device)
        except ValueError as error:
            reasons.append(f"{error}; restart the node with device:=cpu, or with "
                           "allow_cpu_fallback:=true to fall back with a warning (read-only "
                           "parameters; planner.launch.py arguments of the same names)")
        try:
            check_model_source(values["model_path"], values["model_preset"])
        except ValueError as error:
            reasons.append(f"{error}; restart the node with a valid model_path:=... "
                           "(read-only; empty = the embedded default model)")
        if reasons:
            return self.fail_configure(reasons)
        if warning:
            self.get_logger().warning(warning)
        depth = values["output_qos_depth"]
        self._plan_pub = self.create_lifecycle_publisher(VideoPlan, "plan", depth)
        self._plan_diag_pub = self.create_lifecycle_publisher(
            PlanDiagnostics, "plan_diagnostics", depth)
        self._debug_pub = self.create_lifecycle_publisher(Image, "~/debug/plan_image", 1)
        self._outputs = [self._plan_pub, self._plan_diag_pub, self._debug_pub]
        self._error, self._note = "", "inactive"
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load and warm up the model (on the compute thread), subscribe, start the worker."""
        values = parameters.current(self, planner_parameters.PLANNER_PARAMS)
        try:
            loaded, warm = compute_thread().call(self._load_model, values)
        except SamplingCancelled:
            self.release()
            self._note = "activation cancelled: the node is stopping"
            self.get_logger().info(f"activate: {self._note}")
            return TransitionCallbackReturn.FAILURE
        except Exception as error:  # noqa: BLE001 - any load failure is a failed transition
            self.release()
            self._error = f"model load failed: {error}"
            self.get_logger().error(f"activate: {self._error}")
            return TransitionCallbackReturn.FAILURE
        self.get_logger().info(
            f"model {self._model_id} on {describe_device(self._device)}, dtype {values['dtype']}"
            f", sampler {values['sampler']}: loaded in {loaded:.2f} s, warm-up "
            f"({values['warmup_runs']} plan(s)) {warm:.2f} s; calibration: {self._choice.note}")
        if values["latency_budget_s"] > 0 and not self._choice.budget_available:
            self.get_logger().warning(
                f"latency_budget_s={values['latency_budget_s']} cannot be met without a "
                f"calibration: plans use the configured sampler ({self._choice.note})")
        self._inputs = [
            self.create_subscription(
                Image, "image", self._on_image,
                make_qos(values["image_qos.reliability"], values["image_qos.depth"])),
            self.create_subscription(
                Instruction, "instruction", self._on_instruction, latched_qos()),
            self.create_service(RequestPlan, "request_plan", self._on_request_plan),
        ]
        self.start_worker(self._plan_step)
        self._error, self._note = "", ""
        return super().on_activate(state)

    def _load_model(self, values: dict[str, Any]) -> tuple[float, float]:
        """Build the planner and run the warm-up plans (compute thread); return both times (s)."""
        start = time.perf_counter()
        self._planner, self._model_id = build_planner(
            values["model_path"], values["model_preset"], values["image_size"],
            values["text_encoder"], planner_parameters.sampler_settings(values).build(),
            self._device)
        reasons = planner_parameters.sampler_reasons(values, self._planner.model.schedule)
        if reasons:
            raise ValueError("sampler settings do not fit this model: " + "; ".join(reasons))
        self._dtype = resolve_dtype(values["dtype"], self._device)
        self._choice = SamplerChoice(*find_model_calibration(
            values["model_path"], values["model_preset"], values["calibration_dir"],
            str(self._device)))
        self._plan_sampler = None
        self._choose_sampler(values)    # warm up with the sampler the plans will run
        loaded = time.perf_counter() - start
        blank = np.zeros((*self._planner.model.config.image_size, 3), np.uint8)
        for _ in range(values["warmup_runs"]):
            with compute_precision(self._device, self._dtype):
                self._planner.plan(blank, "warm up", seed=0, callback=self._cancel_hook)
        return loaded, time.perf_counter() - start - loaded

    @property
    def video_planner(self) -> VideoPlanner | None:
        """The loaded VideoPlanner (None unless active); call it on the compute thread only."""
        return self._planner

    def release(self) -> None:
        """Drop the model (and cached CUDA memory), frames and requests not yet planned."""
        self._planner = None
        self._choice = self._plan_sampler = None
        self._images.clear()
        self._requests.clear()
        self._request = None
        free_memory(self._device)

    def health_gauges(self) -> dict[str, Any]:
        """Model, device, dtype, sampler, plan_in_flight_s (0 when idle), GPU memory (CUDA)."""
        since = self._sampling_since
        gauges = {"model": self._model_id, "device": str(self._device),
                  "sampler": self.param("sampler"), "dtype": self.param("dtype"),
                  "plan_in_flight_s": 0.0 if since is None else time.monotonic() - since}
        if self._device.type == "cuda":
            gauges["gpu_memory_mib"] = torch.cuda.memory_allocated(self._device) / 2**20
        return gauges

    # ------------------------------------------------------------------ parameters
    def _schedule(self) -> NoiseSchedule:
        """Return the loaded model's noise schedule (AVDC's T = 100 before one is loaded)."""
        return self._planner.model.schedule if self._planner is not None else NoiseSchedule.avdc()

    def _validate_update(self, params: list[Parameter]) -> Any:
        """on-set callback: accept only values that plan; they apply on the next plan.

        A change to any sampler setting re-checks the settings of every sampler against the
        model's schedule, in use or not, so switching `sampler` later always plans.
        """
        update = {p.name: p.value for p in params}
        reasons = parameters.check_values(planner_parameters.PLANNER_PARAMS, update)
        if not reasons and any(name.startswith(_SAMPLER_PREFIXES) for name in update):
            values = parameters.current(self, planner_parameters.PLANNER_PARAMS)
            reasons = planner_parameters.sampler_reasons({**values, **update}, self._schedule())
        choice = self._choice
        if (not reasons and update.get("latency_budget_s", 0) > 0 and choice is not None
                and not choice.budget_available):
            reasons = [f"latency_budget_s needs a calibration of this model: {choice.note}"]
        return parameters.result(reasons)

    def _choose_sampler(self, values: dict[str, Any]) -> PlanSampler:
        """Pick the next plan's settings (auto thresholds, latency budget); set the sampler."""
        chosen = self._choice.for_plan(planner_parameters.sampler_settings(values),
                                       values["latency_budget_s"])
        if self._plan_sampler is None or chosen.settings != self._plan_sampler.settings:
            self.get_logger().info(f"sampler now {chosen.settings.spec()}"
                                   + (f" ({chosen.threshold_source})"
                                      if chosen.threshold_source else ""))
        self._planner.sampler = self._choice.sampler(chosen.settings)
        self._plan_sampler = chosen
        return chosen

    # ------------------------------------------------------------------ callbacks
    def _on_image(self, msg: Image) -> None:
        """Check and store the latest frame (no decoding, no model work here)."""
        self.health.input_arrived()
        self.health.count("images_received")
        received = self.get_clock().now()
        try:
            check_image(msg)
            problem = stamp_problem(msg.header.stamp, received.nanoseconds,
                                    self.param("max_stamp_future_s"))
            if problem:
                raise ImageConversionError(problem, f"stamp {msg.header.stamp.sec} s "
                                           f"{msg.header.stamp.nanosec} ns")
        except ImageConversionError as error:
            self._drop_invalid(error, msg)
            return
        self.health.input_valid(True)
        if self._images.put(ReceivedImage(msg, stamp_ns(msg.header.stamp), received,
                                          time.monotonic())):
            self.health.count("images_skipped")   # replaced before the worker took it
        self.notify_worker()

    def _on_instruction(self, msg: Instruction) -> None:
        """Store the latest instruction."""
        self.health.count("instructions_received")
        self._instructions.put(msg)
        self.notify_worker()

    def _on_request_plan(self, request: RequestPlan.Request,
                         response: RequestPlan.Response) -> RequestPlan.Response:
        """`request_plan` service: plan once from a frame stamped at or after min_stamp."""
        self.health.count("plan_requests")
        if not -1 <= request.seed <= parameters.INT32_MAX:
            response.accepted = False
            response.message = f"seed {request.seed} outside -1..{parameters.INT32_MAX}"
            return response
        if request.min_stamp.sec < 0 or request.min_stamp.nanosec >= NS_PER_S:
            response.accepted = False
            response.message = "min_stamp must be a valid time (sec >= 0, nanosec < 1e9)"
            return response
        self._requests.put(Request(stamp_ns(request.min_stamp),
                                   None if request.seed < 0 else request.seed))
        self.notify_worker()
        response.accepted = True
        response.message = "a plan will be published on 'plan'"
        return response

    def _drop_invalid(self, error: ImageConversionError, msg: Image) -> None:
        """Count and log a dropped frame; report it when a plan was waiting for a frame."""
        self.health.count(f"images_invalid_{error.reason}")
        self.health.input_valid(False)
        self.get_logger().warning(f"dropped camera image: {error}",
                                  throttle_duration_sec=LOG_THROTTLE_S)
        if self.param("replan_policy") == "continuous" or self._request is not None:
            self._plan_diag_pub.publish(PlanDiagnostics(
                header=msg.header, status=PlanDiagnostics.INVALID_INPUT, message=str(error),
                model_id=self._model_id, device=str(self._device), seed=-1,
                sampling_time_s=math.nan, total_latency_s=math.nan, image_age_s=math.nan,
                queue_wait_s=math.nan, predicted_time_s=math.nan))

    # ------------------------------------------------------------------ planning worker
    def _next_image(self, values: dict[str, Any]) -> ReceivedImage | None:
        """Return the frame to plan from now under the replan policy, or None to wait."""
        policy = values["replan_policy"]
        if policy == "on_demand":
            if self._request is None:
                return None
            latest = self._images.peek()
            if latest is None or latest.stamp_ns < self._request.min_stamp_ns:
                return None
            return latest
        if (policy == "periodic"
                and time.monotonic() - self._last_plan_mono < values["replan_period_s"]):
            return None
        return self._images.take()

    def _plan_step(self) -> bool:
        """One worker iteration: plan from the chosen frame if the policy says so."""
        instruction = self._instructions.take()
        if instruction is not None:
            self._instruction = instruction
        request = self._requests.take()
        if request is not None:
            self._request = request
        values = parameters.current(self, planner_parameters.PLANNER_PARAMS)
        received = self._next_image(values)
        if received is None or self._planner is None:
            return False
        taken = time.monotonic()
        header = received.msg.header
        started = self.get_clock().now()
        age = image_age_s(Time.from_msg(header.stamp), received.received, started)
        seed = self._plan_seed(values)
        report = PlanDiagnostics(header=header, plan_id=uuid.uuid4().hex[:16],
                                 sampler=values["sampler"], model_id=self._model_id,
                                 device=str(self._device), image_age_s=age,
                                 seed=-1 if seed is None else seed,
                                 queue_wait_s=taken - received.received_mono,
                                 sampling_time_s=math.nan, total_latency_s=math.nan,
                                 predicted_time_s=math.nan)
        self.health.set(last_image_age_s=age)
        if self._instruction is None or not self._instruction.text.strip():
            self.health.count("no_instruction")
            return self._reject_once(received, report, PlanDiagnostics.NO_INSTRUCTION,
                                     "no instruction received yet" if self._instruction is None
                                     else "the instruction is empty")
        if age > values["max_image_age_s"]:
            self.health.count("images_stale")
            return self._reject_once(received, report, PlanDiagnostics.STALE_INPUT,
                                     f"image is {age:.3f} s old > max_image_age_s "
                                     f"{values['max_image_age_s']}")
        try:
            rgb = image_to_rgb(received.msg)
        except ImageConversionError as error:
            self._drop_invalid(error, received.msg)
            self._images.clear()
            return True
        chosen = self._choose_sampler(values)
        report.sampler_spec, report.threshold_source = (chosen.settings.spec(),
                                                        chosen.threshold_source)
        report.latency_budget_s, report.predicted_time_s = chosen.budget_s, chosen.predicted_s
        report.budget_miss = chosen.miss
        if chosen.miss:
            self.health.count("budget_misses")
        self._in_flight, self._request = self._request, None
        model_start = self._sampling_since = time.monotonic()
        try:
            plan = compute_thread().call(self._sample, rgb, self._instruction.text, seed)
        except SamplingCancelled:
            self.health.count("plans_cancelled")
            return self._reject(report, PlanDiagnostics.CANCELLED, "cancelled: node stopping")
        except NonFiniteOutputError as error:
            self.health.count("plans_rejected_nan")
            return self._reject(report, PlanDiagnostics.REJECTED_NAN, str(error))
        except Exception as error:  # noqa: BLE001 - a model failure must not kill the node
            self.health.count("plans_failed")
            return self._reject(report, PlanDiagnostics.MODEL_ERROR,
                                f"{type(error).__name__}: {error}")
        finally:
            self._in_flight = self._sampling_since = None
        self._last_plan_mono = time.monotonic()
        self._choice.observe(chosen, plan.sampling_time_s)
        if chosen.budget_s and plan.sampling_time_s > chosen.budget_s:
            self.health.count("plans_over_budget")
        self._publish_plan(plan, received, report, values)
        # what the node adds around the model: conversion, messages, publishing
        self.health.observe("ros_overhead_s",
                            time.monotonic() - taken - (self._last_plan_mono - model_start))
        self._publish_debug(plan, rgb, header)
        return True

    def _plan_seed(self, values: dict[str, Any]) -> int | None:
        """Return the request's seed, else the `seed` parameter (None: fresh noise)."""
        if self._request is not None and self._request.seed is not None:
            return self._request.seed
        return None if values["seed"] < 0 else values["seed"]

    def _sample(self, rgb: np.ndarray, instruction: str, seed: int | None) -> Plan:
        """Run the sampler (compute thread); a stopping worker cancels it between model calls."""
        with compute_precision(self._device, self._dtype):
            return self._planner.plan(rgb, instruction, seed=seed, callback=self._stop_hook)

    def _stop_hook(self, _step: Any) -> None:
        """Sampler callback: raise SamplingCancelled once the worker is asked to stop."""
        if self.stopping:
            raise SamplingCancelled("the planner node is stopping")

    def _cancel_hook(self, _step: Any) -> None:
        """Warm-up sampler callback: raise SamplingCancelled once the process stops."""
        if self.cancelled:
            raise SamplingCancelled("the planner node is stopping")

    def _reject(self, report: PlanDiagnostics, status: int, message: str) -> bool:
        """Publish a PlanDiagnostics with a failure `status`, log it (throttled)."""
        report.status, report.message = status, message
        self._plan_diag_pub.publish(report)
        self.get_logger().warning(f"no plan: {message}", throttle_duration_sec=LOG_THROTTLE_S)
        return True

    def _reject_once(self, received: ReceivedImage, report: PlanDiagnostics, status: int,
                     message: str) -> bool:
        """Reject a frame the worker may see again (on_demand peeks): report it only once."""
        key = (received.stamp_ns, status)
        if key != self._reported:
            self._reported = key
            self._reject(report, status, message)
        self._images.take()
        return False

    def _publish_plan(self, plan: Plan, received: ReceivedImage, report: PlanDiagnostics,
                      values: dict[str, Any]) -> None:
        header = received.msg.header
        fill_diagnostics(report, plan.stats)
        report.sampling_time_s = plan.sampling_time_s
        msg = VideoPlan(header=header, plan_id=report.plan_id,
                        instruction=self._instruction.text, task_id=self._instruction.task_id,
                        frames=[rgb_to_image(frame, header) for frame in plan.frames],
                        frame_dt=values["frame_dt_s"])
        report.total_latency_s = time.monotonic() - received.received_mono
        msg.diagnostics = report
        self._plan_pub.publish(msg)
        self._plan_diag_pub.publish(report)
        self.health.count("plans_published")
        self.health.observe("plan_latency_s", report.total_latency_s)
        self.health.observe("sampling_time_s", plan.sampling_time_s)
        self.health.set(last_sampling_time_s=plan.sampling_time_s, last_nfe=float(report.nfe),
                        last_acceptance_rate=float(report.acceptance_rate))

    def _publish_debug(self, plan: Plan, rgb: np.ndarray, header: Any) -> None:
        """Tiled source frame + plan on ~/debug/plan_image, only while someone listens."""
        if self._debug_pub.get_subscription_count() > 0:
            self._debug_pub.publish(rgb_to_image(
                tile_frames(with_source_frame(rgb, plan.frames)), header))


def main(args: list[str] | None = None) -> NoReturn:
    """Run the planner node (`ros2 run dts_planner planner_node`)."""
    run_nodes(lambda: [PlannerNode()], args)


if __name__ == "__main__":
    main()
