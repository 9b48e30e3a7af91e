"""Running nodes: lifecycle autostart and a MultiThreadedExecutor main loop with clean shutdown."""

from __future__ import annotations

from typing import Callable, Sequence

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.node import Node


def autostart(node: LifecycleNode) -> bool:
    """Configure then activate `node`; False (after the node logged why) if a step failed."""
    if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
        node.get_logger().error("configure failed; the node stays unconfigured "
                                "(fix the parameters, then: ros2 lifecycle set <node> configure)")
        return False
    if node.trigger_activate() != TransitionCallbackReturn.SUCCESS:
        node.get_logger().error("activate failed; the node stays inactive")
        return False
    return True


def run_nodes(make_nodes: Callable[[], Sequence[Node]], args: list[str] | None = None,
              num_threads: int = 4) -> None:
    """rclpy.init, build the nodes, autostart lifecycle nodes that ask for it, spin until Ctrl-C.

    Nodes are destroyed (workers joined, models freed) before rclpy shuts down.
    """
    rclpy.init(args=args)
    nodes: Sequence[Node] = ()
    executor = MultiThreadedExecutor(num_threads=num_threads)
    try:
        nodes = make_nodes()
        for node in nodes:
            executor.add_node(node)
            if isinstance(node, LifecycleNode) and node.get_parameter("autostart").value:
                autostart(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        for node in nodes:   # the nodes' destroy_node stops their worker threads first
            executor.remove_node(node)
            node.destroy_node()
        executor.shutdown()
        rclpy.try_shutdown()
