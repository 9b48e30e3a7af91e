"""Speed-fidelity report: DTS against ParaDiGMS, SRDS, sequential samplers and SDVG blocks.

``python -m dts_planner.bench report [--tiny] [--model default|random|PATH] [--out PATH]`` runs
every method and its knob on the same model, the same noise and the same machine in one
process, then writes the markdown (default ``docs/benchmarks.md`` under the current directory)
and PNG plots under ``img/`` beside it. The pieces: ``sweeps`` (cases, problems, measurement),
``block_study`` (SDVG), ``analysis`` (equal fidelity), ``plots``, ``render`` (markdown).
"""

from __future__ import annotations

import argparse
from pathlib import Path
import time
from typing import Sequence

from dts_planner.bench.block_study import block_study
from dts_planner.bench.common import torch_threads
from dts_planner.bench.plots import plot_blocks, plot_frontier
from dts_planner.bench.render import eval_section, render_markdown
from dts_planner.bench.sweeps import make_problems, measure, sweep_cases
from dts_planner.models import (DEFAULT_CONFIG, load_video_model, random_video_model,
                                TINY_CONFIG, VideoDiffusionModel)


def load_model(spec: str, tiny: bool) -> VideoDiffusionModel:
    """Load ``default`` (shipped weights), ``random`` (default-shaped random U-Net) or a path."""
    if tiny:
        return random_video_model(TINY_CONFIG)
    if spec == "random":
        return random_video_model(DEFAULT_CONFIG)
    return load_video_model(None if spec == "default" else spec).eval()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m dts_planner.bench report",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true",
                        help="tiny random model and a cut-down sweep (seconds; for tests)")
    parser.add_argument("--model", default="default",
                        help="'default' (shipped weights), 'random' or a checkpoint path")
    parser.add_argument("--cond", choices=("auto", "metaworld", "random"), default="auto",
                        help="conditioning: Meta-World first frames + instructions, or random "
                        "(auto: Meta-World for a trained model)")
    parser.add_argument("--seeds", type=int, default=None, help="problems (default 3, tiny 1)")
    parser.add_argument("--blocks", type=int, default=None,
                        help="blocks of the SDVG long plan (default 3, tiny 2)")
    parser.add_argument("--draft-steps", type=int, default=4, help="SDVG drafter DDIM steps")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--eval-csv", type=Path, default=None,
                        help="closed-loop results CSV to include")
    parser.add_argument("--out", type=Path, default=Path("docs") / "benchmarks.md",
                        help="markdown output (default: docs/benchmarks.md under the current "
                        "directory, the repository root); plots go to img/ beside it")
    args = parser.parse_args(argv)
    args.seeds = args.seeds or (1 if args.tiny else 3)
    args.blocks = args.blocks or (2 if args.tiny else 3)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the report and write the markdown and plots."""
    args = parse_args(argv)
    args.command_line = "python -m dts_planner.bench report " + " ".join(argv or [])
    with torch_threads(args.threads):
        return _report(args)


def _report(args: argparse.Namespace) -> int:
    """Measure, plot and write (the body of ``main``)."""
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    model = load_model(args.model, args.tiny)
    metaworld = args.cond == "metaworld" or (
        args.cond == "auto" and not args.tiny and args.model != "random")
    model_line = ("tiny random U-Net (8x8, 2 frames)" if args.tiny else
                  f"{args.model}: {model.config.summary()}") + (
        "; conditioning: Meta-World first frames and instructions" if metaworld else
        "; conditioning: random images and text tokens")
    problems = make_problems(model, args.seeds, metaworld)
    ref, results = measure(model, sweep_cases(args.tiny), problems, 10 if args.tiny else 100,
                           print)
    study = block_study(model, problems, args.blocks, args.draft_steps, print)
    images = args.out.parent / "img"
    images.mkdir(parents=True, exist_ok=True)
    plot_frontier(ref, results, images / "frontier_wallclock.png", x_depth=False)
    plot_frontier(ref, results, images / "frontier_depth.png", x_depth=True)
    plot_blocks(study, images / "block_speculative.png")
    args.out.write_text(render_markdown(ref, results, study, args, model_line, started,
                                        eval_section(args.eval_csv)))
    print(f"wrote {args.out} and {images}/*.png")
    return 0
