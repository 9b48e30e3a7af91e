"""Running nodes: lifecycle autostart, the executor loop, and a clean exit on SIGINT / SIGTERM.

Executor: one `SingleThreadedExecutor` on the main thread. Every callback of the nodes only
checks and stores a message (the heavy work runs on worker threads and the compute thread), so
one thread serves them; measured with a 30 Hz 640x480 camera, a MultiThreadedExecutor slowed
sampling by 1.36x (p95 2.3x) through its thread pool's Python work, the single-threaded one by
1.01x (see docs/architecture.md). rclpy's experimental EventsExecutor busy-waits at 100 % of a
core in this rclpy release.

Signals: rclpy's own handlers are off; SIGINT and SIGTERM only request a stop (a second Ctrl-C,
as `ros2 launch` delivers it, changes nothing), the loop ends within 0.1 s, the nodes stop their
workers (a plan in flight is cancelled between two model calls) and are destroyed, and the
process exits with code 0 and no traceback. A stop during the start-up transitions cancels them
too (the planner's warm-up plans end between two model calls).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import FrameType
from typing import Callable, Iterable, NoReturn, Sequence

import rclpy
import rclpy.logging
from rclpy.context import Context
from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from dts_planner.ros.compute import compute_thread
from dts_planner.ros.parameters import PACKAGE, ParameterError
from dts_planner.ros.worker_node import WorkerLifecycleNode

SPIN_PERIOD_S = 0.1
"""Longest wait of the executor loop before it looks at the stop request again."""


class StopRequest:
    """SIGINT and SIGTERM set `event` (no KeyboardInterrupt); `restore` puts the old handlers back.

    Handlers can only be installed from the main thread; elsewhere the request is only set by
    `request()`. Each request also calls `on_request` (e.g. cancel the nodes' transitions).
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, on_request: Callable[[], None] = lambda: None) -> None:
        """Install the handlers (main thread only)."""
        self.event = threading.Event()
        self._on_request = on_request
        self._previous: dict[int, object] = {}
        if threading.current_thread() is threading.main_thread():
            for number in self.SIGNALS:
                self._previous[number] = signal.signal(number, self._handle)

    def _handle(self, number: int, frame: FrameType | None) -> None:
        self.request()

    def request(self) -> None:
        """Ask for a stop (as a signal would)."""
        self.event.set()
        self._on_request()

    @property
    def requested(self) -> bool:
        """Whether a stop was requested."""
        return self.event.is_set()

    def restore(self) -> None:
        """Reinstall the handlers that were there before."""
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous = {}


def cancel_transitions(nodes: Iterable[Node]) -> None:
    """Cancel the start-up transitions in progress of our lifecycle nodes (the process stops)."""
    for node in nodes:
        if isinstance(node, WorkerLifecycleNode):
            node.cancel()


def autostart(node: LifecycleNode) -> bool:
    """Configure then activate `node`; False (after the node logged why) if a step failed.

    A transition cancelled because the process stops (`WorkerLifecycleNode.cancel`) fails
    without an error.
    """
    if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
        node.get_logger().error(
            "configure failed: the node stays unconfigured. Fix the parameter named above and "
            "restart the node (read-only parameters cannot be changed while it runs); for a "
            "runtime parameter: ros2 param set, then ros2 lifecycle set <node> configure")
        return False
    if node.trigger_activate() != TransitionCallbackReturn.SUCCESS:
        if not (isinstance(node, WorkerLifecycleNode) and node.cancelled):
            node.get_logger().error(
                "activate failed; the node stays inactive (see the error above)")
        return False
    return True


def spin_until(executor: Executor, stop: StopRequest,
               until: Callable[[], bool] = lambda: False) -> None:
    """Run the executor until a stop is requested, `until()` is true or the context ends."""
    try:
        while not stop.requested and not until() and executor.context.ok():
            executor.spin_once(timeout_sec=SPIN_PERIOD_S)
    except ExternalShutdownException:
        pass


def shutdown(executor: Executor, nodes: Iterable[Node], context: Context | None = None) -> None:
    """Destroy the nodes (each stops its worker first), executor, compute thread and context.

    `context` None: the default context.
    """
    for node in nodes:
        executor.remove_node(node)
        node.destroy_node()
    executor.shutdown(timeout_sec=1.0)
    compute_thread().close()
    rclpy.try_shutdown(context=context, uninstall_handlers=False)   # ours stay installed


def run_nodes(make_nodes: Callable[[], Sequence[Node]],
              args: list[str] | None = None) -> NoReturn:
    """rclpy.init, build the nodes, autostart the lifecycle nodes that ask for it, spin; exit.

    Ends the process: code 0 after a requested stop (SIGINT, SIGTERM) or an external shutdown,
    1 when a start-up parameter value is refused (logged as one line). Once the nodes, the
    executor and the context are shut down, the process leaves through os._exit: Python's own
    teardown of torch, transformers and friends took another second (measured), which would
    push a stop past the 2 s a launch system allows, and has nothing left to release.
    """
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    nodes: Sequence[Node] = ()
    stop = StopRequest(lambda: cancel_transitions(nodes))
    executor = SingleThreadedExecutor()
    code = 0
    try:
        nodes = make_nodes()
        for node in nodes:
            executor.add_node(node)
        for node in nodes:
            if isinstance(node, LifecycleNode) and node.get_parameter("autostart").value:
                autostart(node)
        spin_until(executor, stop)
    except ParameterError as error:
        rclpy.logging.get_logger(PACKAGE).error(str(error))
        code = 1
    finally:
        shutdown(executor, nodes)   # the handlers stay: a late second Ctrl-C changes nothing
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
