"""Lifecycle plumbing shared by the planner and action-predictor nodes.

A `WorkerLifecycleNode` declares its parameters, publishes its health on /diagnostics (in every
state), keeps the entities it creates on configure (outputs) and activate (inputs), runs its
heavy step on one worker thread while active, and releases everything on deactivate, cleanup,
shutdown and `destroy_node` (in that order: worker, inputs, loaded state, outputs).
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Iterable

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.service import Service
from rclpy.timer import Timer

from dts_planner.ros import parameters
from dts_planner.ros.diagnostics import diagnostic_array, NodeHealth
from dts_planner.ros.worker import Worker

LOG_THROTTLE_S = 5.0


class WorkerLifecycleNode(LifecycleNode):
    """Base of the lifecycle nodes; subclasses set `status_name` and fill the hooks."""

    status_name = "node"

    def __init__(self, node_name: str, specs: Iterable[parameters.ParamSpec],
                 **kwargs: Any) -> None:
        """Declare `specs`, start the /diagnostics timer; nothing else until configure.

        A start-up value that cannot be declared raises parameters.ParameterError (one line).
        """
        self.health = NodeHealth()
        self._error, self._note = "", "unconfigured"   # ERROR / WARN text for /diagnostics
        self._lifecycle_label = "unconfigured"
        self._worker: Worker | None = None
        self._inputs: list[Any] = []    # subscriptions, services and timers made on activate
        self._outputs: list[Any] = []   # lifecycle publishers made on configure
        self._cancelled = threading.Event()
        super().__init__(node_name, **kwargs)
        parameters.declare(self, specs)
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(self.param("diagnostics_period_s"), self._publish_health)

    def param(self, name: str) -> Any:
        """Return the current value of parameter `name`."""
        return self.get_parameter(name).value

    # ------------------------------------------------------------------ hooks
    def release(self) -> None:
        """Free what activate loaded (called on deactivate and close)."""

    def unconfigure(self) -> None:
        """Forget what configure built besides the outputs (called on cleanup and close)."""

    def health_gauges(self) -> dict[str, Any]:
        """Extra gauges for /diagnostics."""
        return {}

    def hardware_id(self) -> str:
        """hardware_id of the /diagnostics status."""
        return self.param("device")

    # ------------------------------------------------------------------ helpers
    def start_worker(self, step: Callable[[], bool]) -> None:
        """Run `step` on the node's worker thread until deactivate; input is expected now."""
        self.health.expect_input()
        self._worker = Worker(f"{self.get_name()}-worker", step, self._on_worker_error,
                              self.context.ok)
        self._worker.start()

    def cancel(self) -> None:
        """Tell the node its process stops: a transition in progress (a warm-up) ends early."""
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        """Whether `cancel()` was called: a long transition should stop (and fail quietly)."""
        return self._cancelled.is_set()

    @property
    def stopping(self) -> bool:
        """Whether the worker was asked to stop (long steps should return early)."""
        return self._worker is None or self._worker.stopping

    def notify_worker(self) -> None:
        """Wake the worker: new input arrived."""
        if self._worker is not None:
            self._worker.notify()

    def fail_configure(self, reasons: list[str]) -> TransitionCallbackReturn:
        """Log every reason and stay unconfigured."""
        for reason in reasons:
            self.get_logger().error(f"configure: {reason}")
        self._error = "; ".join(reasons)
        return TransitionCallbackReturn.FAILURE

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Record the new state; subclasses validate and build first, then call this."""
        self._lifecycle_label = "inactive"
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Record the new state; subclasses load and subscribe first, then call this."""
        self._lifecycle_label = "active"
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop the worker (a plan in flight is cancelled), unsubscribe, release."""
        self._stop_inputs()
        self.release()
        self._note, self._lifecycle_label = "inactive", "inactive"
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Destroy the publishers."""
        self._destroy_outputs()
        self.unconfigure()
        self._error, self._note, self._lifecycle_label = "", "unconfigured", "unconfigured"
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Release everything from any state."""
        self.close()
        self._lifecycle_label = "finalized"
        return super().on_shutdown(state)

    def close(self) -> None:
        """Stop the worker and free everything (idempotent)."""
        self._stop_inputs()
        self.release()
        self._destroy_outputs()
        self.unconfigure()
        self._note = "shut down"

    def destroy_node(self) -> None:
        """Stop the worker and free everything before the node's entities go."""
        self.close()
        super().destroy_node()

    def _stop_inputs(self) -> None:
        if self._worker is not None:
            self._worker.stop()
            self._worker = None
        for entity in self._inputs:
            if isinstance(entity, Service):
                self.destroy_service(entity)
            elif isinstance(entity, Timer):
                self.destroy_timer(entity)
            else:
                self.destroy_subscription(entity)
        self._inputs = []

    def _destroy_outputs(self) -> None:
        for pub in self._outputs:
            self.destroy_lifecycle_publisher(pub)
        self._outputs = []

    def _on_worker_error(self, error: BaseException) -> None:
        self.health.count("worker_errors")
        self.get_logger().error(f"worker: {type(error).__name__}: {error}",
                                throttle_duration_sec=LOG_THROTTLE_S)

    def _publish_health(self) -> None:
        state = self._lifecycle_label
        self.health.set(lifecycle_state=state, **self.health_gauges())
        silent_s, warn_s = self.health.seconds_without_input(), self.param("no_input_warn_s")
        if state == "active" and silent_s > warn_s:
            self.get_logger().warning(
                f"no input for {silent_s:.0f} s: check the topic remappings and QoS "
                "(ros2 topic info -v)", throttle_duration_sec=max(warn_s, LOG_THROTTLE_S))
        status = self.health.status(
            f"{self.get_fully_qualified_name()}: {self.status_name}", self.hardware_id(),
            self.param("no_input_warn_s"), error=self._error, warning=self._note,
            invalid_warn_fraction=self.param("invalid_input_warn_fraction"))
        self._diagnostics_pub.publish(diagnostic_array(self.get_clock().now().to_msg(), [status]))
