"""Run an evaluation: ``python -m dts_planner.eval <name> [options]`` (``-h`` after the name).

This dispatcher is the evaluations' composition root: it alone may reach the ROS layer, to give
``metaworld`` its ``--via ros`` driver (`dts_planner.ros.policy_graph.evaluate_via_ros`).
"""

import importlib
import sys

EVALUATIONS = ("metaworld", "video_quality")


def via_ros(args, log):
    """Run the metaworld evaluation through the ROS nodes (imported only when asked for)."""
    from dts_planner.ros.policy_graph import evaluate_via_ros
    return evaluate_via_ros(args, log)


def main() -> None:
    """Run the evaluation module named on the command line with the remaining arguments."""
    if len(sys.argv) < 2 or sys.argv[1] not in EVALUATIONS:
        sys.exit(f"usage: python -m dts_planner.eval {{{','.join(EVALUATIONS)}}} [options]")
    module = importlib.import_module(f"dts_planner.eval.{sys.argv[1]}")
    if sys.argv[1] == "metaworld":
        module.main(sys.argv[2:], drivers={"ros": via_ros})
    else:
        module.main(sys.argv[2:])


if __name__ == "__main__":
    main()
