"""Run an evaluation: ``python -m dts_planner.eval <name> [options]`` (``-h`` after the name)."""

import importlib
import sys

EVALUATIONS = ("metaworld", "video_quality")


def main() -> None:
    """Run the evaluation module named on the command line with the remaining arguments."""
    if len(sys.argv) < 2 or sys.argv[1] not in EVALUATIONS:
        sys.exit(f"usage: python -m dts_planner.eval {{{','.join(EVALUATIONS)}}} [options]")
    importlib.import_module(f"dts_planner.eval.{sys.argv[1]}").main(sys.argv[2:])


if __name__ == "__main__":
    main()
