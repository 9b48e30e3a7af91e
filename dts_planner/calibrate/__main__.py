"""Calibrate the samplers to a video model on this device and write the calibration file.

    python -m dts_planner.calibrate --model default --device cpu --target-acceptance 0.7
    python -m dts_planner.calibrate --model ckpt.pt --frames DIR --instructions "open the door"
    python -m dts_planner.calibrate --show dts_planner/weights/video_default.calibration.json

Measures DTS's draft-to-target distances, fits its thresholds for the target acceptance, and
times and scores (PSNR vs DDIM-100, same noise) DDIM-N, DPM-Solver++ N, a DTS grid, ParaDiGMS
and SRDS; prints the acceptance table, the speed-fidelity frontier and the configuration per
latency budget, and writes the file (default: next to the checkpoint, see
``dts_planner.calibration.calibration_path``) and a frontier PNG. ``--show`` prints the tables
of an existing file (and re-plots it with ``--png``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
import sys

import torch


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m dts_planner.calibrate",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="default", help="'default' (embedded) or a checkpoint")
    parser.add_argument("--preset", default=None, help="config of a checkpoint that has none")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda:0")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (0: torch's default); the planner's count")
    parser.add_argument("--frames", help="folder of conditioning images (default: Meta-World "
                        "first frames and instructions)")
    parser.add_argument("--instructions", nargs="+", default=[],
                        help="with --frames: one instruction per image, or one for all")
    parser.add_argument("--cond", choices=("metaworld", "random"), default="metaworld",
                        help="without --frames: Meta-World frames or random image and text")
    parser.add_argument("--plans", type=int, default=5,
                        help="calibration plans without --frames (Meta-World: task i %% 5)")
    parser.add_argument("--target-acceptance", type=float, default=0.7,
                        help="DTS acceptance rate (accepted / drafted tokens) to calibrate for")
    parser.add_argument("--tolerance", type=float, default=0.1,
                        help="acceptance within this of the target counts as met")
    parser.add_argument("--dts", default="dts", help="DTS configuration to calibrate (spec; "
                        "its thresholds are replaced), e.g. dts:chunk=10")
    parser.add_argument("--grid", choices=("full", "small"), default="full",
                        help="candidate grid (small: a seconds-long smoke run)")
    parser.add_argument("--out", help="calibration file (default: next to the checkpoint)")
    parser.add_argument("--png", help="frontier plot (default: the file with .png)")
    parser.add_argument("--show", metavar="FILE", help="print an existing file's tables")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def show(args: argparse.Namespace) -> int:
    """Print the tables of an existing calibration file (re-plot it with --png)."""
    from dts_planner.calibrate.report import plot, report
    from dts_planner.calibration import Calibration, CalibrationError

    try:
        calibration = Calibration.load(args.show)
    except CalibrationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(report(calibration))
    if args.png:
        print(f"wrote {plot(calibration, args.png)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the calibration (or --show) and write the file and the plot."""
    args = parse_args(argv)
    if args.show:
        return show(args)
    from dts_planner.bench.sweeps import make_problems
    from dts_planner.calibrate.measure import calibrate, frame_problems, Grid, to_device
    from dts_planner.calibrate.report import plot, report
    from dts_planner.calibration import calibration_path, file_sha256
    from dts_planner.common.device import resolve_device
    from dts_planner.diffusion import DTSSettings, parse_spec
    from dts_planner.models import DEFAULT_WEIGHTS, load_video_model

    if args.threads:
        torch.set_num_threads(args.threads)
    base = parse_spec(args.dts)
    if not isinstance(base, DTSSettings):
        print(f"error: --dts must be a dts spec, got {args.dts!r}", file=sys.stderr)
        return 2
    if not 0.0 <= args.target_acceptance <= 1.0:
        print("error: --target-acceptance must be in [0, 1]", file=sys.stderr)
        return 2
    path = DEFAULT_WEIGHTS if args.model == "default" else Path(args.model)
    device = resolve_device(args.device)
    model = load_video_model(path, device, preset=args.preset)
    if args.frames:
        problems, conditioning = frame_problems(model, args.frames, args.instructions)
    else:
        problems = make_problems(model, args.plans, args.cond == "metaworld")
        conditioning = (f"{args.plans} Meta-World first frames and instructions"
                        if args.cond == "metaworld" else f"{args.plans} random images and texts")
    digest = file_sha256(path)
    info = {"path": args.model, "id": f"{path.stem}@{digest[:8]}", "hash": digest,
            "summary": model.config.summary(), "conditioning": conditioning}
    grid = Grid.small() if args.grid == "small" else Grid()
    calibration = calibrate(model, to_device(problems, device), grid, args.target_acceptance,
                            base, model_info=info, device_name=str(device),
                            tolerance=args.tolerance, progress=not args.no_progress)
    out = Path(args.out) if args.out else calibration_path(path, str(device))
    calibration.save(out)
    calibration.source = str(out)
    print(report(calibration))
    png = plot(calibration, args.png or out.with_suffix(".png"))
    print(f"\nwrote {out} and {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
