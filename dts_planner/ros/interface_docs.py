"""docs/ros_interface.md's generated tables: the nodes' parameters and the launch arguments.

    python -m dts_planner.ros.interface_docs            # rewrite the generated blocks
    python -m dts_planner.ros.interface_docs --check    # exit 1 if the docs drifted

The tables come from the declarations (`dts_planner.ros.parameters` and
`planner_parameters`: descriptions, ranges, choices, read-only; the sampler parameters from
the sampler registry), the defaults from config/planner.yaml and the launch arguments from
`dts_planner.ros.launch_arguments`, so the docs cannot drift from the running nodes: a test
compares them.
"""

from __future__ import annotations

import argparse
from pathlib import Path
import re
import sys
from typing import Any, Iterable

from dts_planner.ros import parameters, planner_parameters
from dts_planner.ros.launch_arguments import ARGUMENTS

DOCS = Path(__file__).resolve().parents[2] / "docs" / "ros_interface.md"
_BLOCK = re.compile(
    r"(<!-- generated: (?P<name>[a-z_]+) -->\n)(?:(?!<!-- end generated -->).*\n)*"
    r"(<!-- end generated -->)")


def _type(value: Any) -> str:
    return {bool: "bool", int: "int", float: "double", str: "string"}[type(value)]


def _default(value: Any) -> str:
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f'`"{value}"`'
    return f"`{value:g}`" if isinstance(value, float) else f"`{value}`"


def parameter_table(specs: Iterable[parameters.ParamSpec]) -> str:
    """Markdown table of `specs`: name, type, default (config/planner.yaml), range, runtime."""
    defaults = parameters.load_defaults()
    rows = ["| parameter | type | default | range / choices | runtime | meaning |",
            "|---|---|---|---|---|---|"]
    for spec in specs:
        default = defaults[spec.name]
        allowed = spec.allowed() if (spec.choices or spec.bounds) else ""
        rows.append(f"| `{spec.name}` | {_type(default)} | {_default(default)} | {allowed} | "
                    f"{'yes' if spec.runtime else 'no'} | {spec.description} |")
    return "\n".join(rows)


def launch_table() -> str:
    """Markdown table of planner.launch.py's arguments."""
    rows = ["| argument | default | choices | meaning |", "|---|---|---|---|"]
    for name, default, description, choices in ARGUMENTS:
        shown = ", ".join(f"`{c}`" if c else "`''`" for c in choices) if choices else ""
        rows.append(f"| `{name}` | `{default}` | {shown} | {description} |")
    return "\n".join(rows)


def blocks() -> dict[str, str]:
    """Every generated block by name."""
    shared = {spec.name for spec in planner_parameters.PLANNER_PARAMS}
    return {
        "planner_parameters": parameter_table(planner_parameters.PLANNER_PARAMS),
        "predictor_parameters": parameter_table(
            spec for spec in parameters.PREDICTOR_PARAMS if spec.name not in shared),
        "predictor_shared": ", ".join(f"`{spec.name}`" for spec in parameters.PREDICTOR_PARAMS
                                      if spec.name in shared),
        "bridge_parameters": parameter_table(parameters.BRIDGE_PARAMS),
        "launch_arguments": launch_table(),
    }


def render(text: str) -> str:
    """`text` with every generated block replaced by its current content."""
    content = blocks()

    def fill(match: re.Match) -> str:
        return match.group(1) + content[match.group("name")] + "\n" + match.group(3)
    return _BLOCK.sub(fill, text)


def main(argv: list[str] | None = None) -> int:
    """Rewrite (or with --check, verify) the generated blocks of docs/ros_interface.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the docs drifted")
    parser.add_argument("--docs", type=Path, default=DOCS)
    args = parser.parse_args(argv)
    text = args.docs.read_text()
    wanted = render(text)
    if args.check:
        if wanted != text:
            print(f"{args.docs} drifted from the declarations; run: python -m "
                  "dts_planner.ros.interface_docs", file=sys.stderr)
            return 1
        return 0
    args.docs.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main())
