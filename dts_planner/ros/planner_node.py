"""Video planner lifecycle node: camera `image` + `instruction` -> `plan`, `plan_diagnostics`.

Thin adapter over `dts_planner.planning.VideoPlanner`. Subscription callbacks only check and
store the latest frame and instruction; one worker thread plans (model calls are never
concurrent and never block the executor). See docs/ros_interface.md for the interface.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
import time
from typing import Any
import uuid

from dts_msgs.msg import Instruction, PlanDiagnostics, VideoPlan
import numpy as np
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.time import Time
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger
import torch

from dts_planner.diffusion import make_sampler, NonFiniteOutputError, Sampler, SamplerStats
from dts_planner.planning import Plan, VideoPlanner
from dts_planner.ros import parameters
from dts_planner.ros.device import (
    compute_precision, describe_device, free_memory, resolve_dtype, select_device)
from dts_planner.ros.image_conversion import (
    check_image, image_to_rgb, ImageConversionError, rgb_to_image, tile_frames,
    with_source_frame)
from dts_planner.ros.model_loading import build_planner, check_model_source
from dts_planner.ros.qos import latched_qos, make_qos
from dts_planner.ros.spin import run_nodes
from dts_planner.ros.worker import LatestSlot
from dts_planner.ros.worker_node import LOG_THROTTLE_S, WorkerLifecycleNode

_SAMPLER_PREFIXES = tuple(f"{name}." for name in parameters.SAMPLERS) + ("sampler",)


@dataclass
class ReceivedImage:
    """A camera message and when it arrived (node clock, and time.monotonic() in s)."""

    msg: Image
    received: Time
    received_mono: float


def image_age_s(stamp: Time, received: Time, now: Time) -> float:
    """Seconds since acquisition; an unset (zero) stamp counts from reception instead."""
    start = received if stamp.nanoseconds == 0 else stamp
    return (now - start).nanoseconds / 1e9


def fill_diagnostics(msg: PlanDiagnostics, stats: SamplerStats) -> None:
    """Copy sampler counts into `msg` (batch 0 of per-sample DTS lists)."""
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
        super().__init__(node_name, parameters.PLANNER_PARAMS, **kwargs)
        self.add_on_set_parameters_callback(self._validate_update)
        self._images: LatestSlot[ReceivedImage] = LatestSlot()
        self._instructions: LatestSlot[Instruction] = LatestSlot()
        self._instruction: Instruction | None = None
        self._plan_requested = False
        self._last_plan_mono = -math.inf
        self._planner: VideoPlanner | None = None
        self._sampler_key: tuple = ()
        self._device = torch.device("cpu")
        self._dtype = torch.float32
        self._model_id = ""

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Validate every parameter, the device and the model source; create the publishers."""
        values = parameters.current(self, parameters.PLANNER_PARAMS)
        reasons = parameters.check_values(parameters.PLANNER_PARAMS, values)
        reasons += self._sampler_reasons(values)
        try:
            self._device, warning = select_device(values["device"], values["allow_cpu_fallback"])
            resolve_dtype(values["dtype"], self._device)
            check_model_source(values["model_path"], values["model_preset"])
        except ValueError as error:
            reasons.append(str(error))
            warning = ""
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
        """Load and warm up the model, subscribe, start the planning worker."""
        values = parameters.current(self, parameters.PLANNER_PARAMS)
        try:
            start = time.perf_counter()
            key, sampler = self._make_sampler(values)
            self._planner, self._model_id = build_planner(
                values["model_path"], values["model_preset"], values["image_size"],
                values["text_encoder"], sampler, self._device)
            self._dtype = resolve_dtype(values["dtype"], self._device)
            self._sampler_key = key
            loaded = time.perf_counter() - start
            blank = np.zeros((*self._planner.model.config.image_size, 3), np.uint8)
            for _ in range(values["warmup_runs"]):
                with compute_precision(self._device, self._dtype):
                    self._planner.plan(blank, "warm up", seed=0)
            warm = time.perf_counter() - start - loaded
        except Exception as error:  # noqa: BLE001 - any load failure is a failed transition
            self.release()
            self._error = f"model load failed: {error}"
            self.get_logger().error(f"activate: {self._error}")
            return TransitionCallbackReturn.FAILURE
        self.get_logger().info(
            f"model {self._model_id} on {describe_device(self._device)}, dtype {values['dtype']}"
            f", sampler {values['sampler']}: loaded in {loaded:.2f} s, warm-up "
            f"({values['warmup_runs']} plan(s)) {warm:.2f} s")
        self._inputs = [
            self.create_subscription(
                Image, "image", self._on_image,
                make_qos(values["image_qos.reliability"], values["image_qos.depth"])),
            self.create_subscription(
                Instruction, "instruction", self._on_instruction, latched_qos()),
            self.create_service(Trigger, "replan", self._on_replan),
        ]
        self.start_worker(self._plan_step)
        self._error, self._note = "", ""
        return super().on_activate(state)

    def release(self) -> None:
        """Drop the model (and cached CUDA memory) and any frame not yet planned."""
        self._planner = None
        self._sampler_key = ()
        self._images.clear()
        free_memory(self._device)

    def health_gauges(self) -> dict[str, Any]:
        """Model, device, dtype, sampler (and GPU memory in use) for /diagnostics."""
        gauges = {"model": self._model_id, "device": str(self._device),
                  "sampler": self.param("sampler"), "dtype": self.param("dtype")}
        if self._device.type == "cuda":
            gauges["gpu_memory_mib"] = torch.cuda.memory_allocated(self._device) / 2**20
        return gauges

    # ------------------------------------------------------------------ parameters
    def _sampler_reasons(self, values: dict[str, Any]) -> list[str]:
        """Why the sampler settings in `values` cannot build a sampler (empty if they can)."""
        try:
            self._make_sampler(values)
        except (ValueError, TypeError) as error:
            return [f"sampler '{values['sampler']}': {error}"]
        return []

    def _validate_update(self, params: list[Parameter]) -> Any:
        """on-set callback: accept only valid values; they apply on the next plan."""
        update = {p.name: p.value for p in params}
        reasons = parameters.check_values(parameters.PLANNER_PARAMS, update)
        if not reasons and any(name.startswith(_SAMPLER_PREFIXES) for name in update):
            values = parameters.current(self, parameters.PLANNER_PARAMS)
            reasons = self._sampler_reasons({**values, **update})
        return parameters.result(reasons)

    @staticmethod
    def _make_sampler(values: dict[str, Any]) -> tuple[tuple, Sampler]:
        """Build the sampler of `values`; also return a key that changes with its settings."""
        kwargs = parameters.sampler_kwargs(values)
        key = (values["sampler"], tuple(sorted(kwargs.items())))
        return key, make_sampler(values["sampler"], **kwargs)

    def _apply_sampler(self, values: dict[str, Any]) -> None:
        """Rebuild the planner's sampler when its parameters changed since the last plan."""
        key, sampler = self._make_sampler(values)
        if key != self._sampler_key:
            self._planner.sampler, self._sampler_key = sampler, key
            self.get_logger().info(f"sampler now {key[0]} {dict(key[1])}")

    # ------------------------------------------------------------------ callbacks
    def _on_image(self, msg: Image) -> None:
        """Check and store the latest frame (no decoding, no model work here)."""
        self.health.input_arrived()
        self.health.count("images_received")
        try:
            check_image(msg)
        except ImageConversionError as error:
            self._drop_invalid(error)
            return
        if self._images.put(ReceivedImage(msg, self.get_clock().now(), time.monotonic())):
            self.health.count("images_skipped")   # replaced before the worker took it
        self.notify_worker()

    def _on_instruction(self, msg: Instruction) -> None:
        """Store the latest instruction."""
        self.health.count("instructions_received")
        self._instructions.put(msg)
        self.notify_worker()

    def _on_replan(self, request: Trigger.Request, response: Trigger.Response) -> Any:
        """`replan` service: plan again from the next fresh frame (policy on_demand)."""
        self.health.count("replans_requested")
        self._plan_requested = True
        self.notify_worker()
        response.success, response.message = True, "a plan from the next fresh frame"
        return response

    def _drop_invalid(self, error: ImageConversionError) -> None:
        self.health.count(f"images_invalid_{error.reason}")
        self.get_logger().warning(f"dropped camera image: {error}",
                                  throttle_duration_sec=LOG_THROTTLE_S)

    # ------------------------------------------------------------------ planning worker
    def _next_image(self, values: dict[str, Any]) -> ReceivedImage | None:
        """Return the frame to plan from now under the replan policy, or None to wait."""
        policy = values["replan_policy"]
        if policy == "on_demand" and not self._plan_requested:
            return None
        if (policy == "periodic"
                and time.monotonic() - self._last_plan_mono < values["replan_period_s"]):
            return None
        return self._images.take()

    def _plan_step(self) -> bool:
        """One worker iteration: plan from the newest frame if the policy says so."""
        instruction = self._instructions.take()
        if instruction is not None:
            self._instruction, self._plan_requested = instruction, True
        values = parameters.current(self, parameters.PLANNER_PARAMS)
        received = self._next_image(values)
        if received is None or self._planner is None:
            return False
        taken = time.monotonic()
        header = received.msg.header
        started = self.get_clock().now()
        age = image_age_s(Time.from_msg(header.stamp), received.received, started)
        report = PlanDiagnostics(header=header, plan_id=uuid.uuid4().hex[:16],
                                 sampler=values["sampler"], model_id=self._model_id,
                                 device=str(self._device), image_age_s=age,
                                 queue_wait_s=taken - received.received_mono,
                                 sampling_time_s=math.nan, total_latency_s=math.nan)
        self.health.set(last_image_age_s=age)
        if self._instruction is None or not self._instruction.text.strip():
            self.health.count("no_instruction")
            self._plan_requested = False   # on_demand: wait for the next instruction
            return self._reject(report, PlanDiagnostics.NO_INSTRUCTION,
                                "no instruction received yet" if self._instruction is None
                                else "the instruction is empty")
        if age > values["max_image_age_s"]:
            self.health.count("images_stale")
            return self._reject(report, PlanDiagnostics.STALE_INPUT,
                                f"image is {age:.3f} s old > max_image_age_s "
                                f"{values['max_image_age_s']}")
        try:
            rgb = image_to_rgb(received.msg)
        except ImageConversionError as error:
            self._drop_invalid(error)
            return True
        self._apply_sampler(values)
        seed = None if values["seed"] < 0 else values["seed"]
        model_start = time.monotonic()
        try:
            with compute_precision(self._device, self._dtype):
                plan = self._planner.plan(rgb, self._instruction.text, seed=seed)
        except NonFiniteOutputError as error:
            self.health.count("plans_rejected_nan")
            return self._reject(report, PlanDiagnostics.REJECTED_NAN, str(error))
        except Exception as error:  # noqa: BLE001 - a model failure must not kill the node
            self.health.count("plans_failed")
            return self._reject(report, PlanDiagnostics.MODEL_ERROR,
                                f"{type(error).__name__}: {error}")
        self._last_plan_mono = time.monotonic()
        self._plan_requested = False
        self._publish_plan(plan, received, report, values, rgb)
        # what the node adds around the model: conversion, messages, publishing
        self.health.observe("ros_overhead_s",
                            time.monotonic() - taken - (self._last_plan_mono - model_start))
        self._publish_debug(plan, rgb, header)
        return True

    def _reject(self, report: PlanDiagnostics, status: int, message: str) -> bool:
        """Publish a PlanDiagnostics with a failure `status`, log it (throttled)."""
        report.status, report.message = status, message
        self._plan_diag_pub.publish(report)
        self.get_logger().warning(f"no plan: {message}", throttle_duration_sec=LOG_THROTTLE_S)
        return True

    def _publish_plan(self, plan: Plan, received: ReceivedImage, report: PlanDiagnostics,
                      values: dict[str, Any], rgb: np.ndarray) -> None:
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
        self.health.set(last_sampling_time_s=plan.sampling_time_s, last_nfe=float(report.nfe),
                        last_acceptance_rate=float(report.acceptance_rate))

    def _publish_debug(self, plan: Plan, rgb: np.ndarray, header: Any) -> None:
        """Tiled source frame + plan on ~/debug/plan_image, only while someone listens."""
        if self._debug_pub.get_subscription_count() > 0:
            self._debug_pub.publish(rgb_to_image(
                tile_frames(with_source_frame(rgb, plan.frames)), header))


def main(args: list[str] | None = None) -> None:
    """Run the planner node (`ros2 run dts_planner planner_node`)."""
    run_nodes(lambda: [PlannerNode()], args)
