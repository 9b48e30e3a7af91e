"""Dispatch ``python -m dts_planner.bench <name> [options]`` to ``dts_planner.bench.<module>``.

Add a benchmark: write a module with ``main(argv: list[str] | None) -> int`` and register it in
``COMMANDS``. Modules are imported only when their command runs.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS: dict[str, str] = {
    "samplers": "dts_planner.bench.samplers",
    "forward_cost": "dts_planner.bench.forward_cost",
    "ros_graph": "dts_planner.ros.graph_bench",   # ROS: the dispatcher is the composition root
    "ros_budget": "dts_planner.ros.budget_bench",
    "report": "dts_planner.bench.report",
}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark named by the first argument with the remaining arguments."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        print("usage: python -m dts_planner.bench {%s} [options]  (--help per command)"
              % ",".join(sorted(COMMANDS)), file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    return importlib.import_module(COMMANDS[argv[0]]).main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
