"""Speed-fidelity report: DTS against ParaDiGMS, SRDS, sequential samplers and SDVG blocks.

``python -m dts_planner.bench report [--tiny] [--model default|random|PATH]`` runs every method
and its knob on the same model, the same noise and the same machine in one process, then writes
``docs/benchmarks.md`` and PNG plots under ``docs/img/``. Fidelity is the PSNR (dB, [0, 1]
image space) of each plan against the DDPM-100 plan from the same noise and step-noise seed.
Wall-clock is the median over seeds, all methods interleaved per seed so load drifts hit them
alike.
"""

from __future__ import annotations

import argparse
import csv
from contextlib import contextmanager
from dataclasses import dataclass, field
import math
import os
from pathlib import Path
import platform
import statistics
import subprocess
import time
from typing import Callable, Iterator, Sequence

import matplotlib
import numpy as np
import torch
from torch import Tensor

from dts_planner.diffusion import (DDIMSampler, DDPMSampler, DPMSolverSampler, DTSSampler,
                                   SampleResult, Sampler)
from dts_planner.bench.samplers import fidelity, random_condition
from dts_planner.models import (DEFAULT_CONFIG, image_to_cond, load_video_model,
                                random_video_model, UNetConfig,
                                VideoDiffusionModel, VideoModelConfig)
from dts_planner.peers import BlockSpeculativeSampler, ParadigmsSampler, SRDSSampler

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (backend first)

REPO = Path(__file__).resolve().parents[2]
PSNR_CAP = 100.0                     # dB shown for identical plans
EQUAL_FIDELITY_SLACK = 0.25          # dB a peer may fall short of DTS and still count as equal
TINY_CONFIG = VideoModelConfig(
    image_size=(8, 8), num_frames=2, text_encoder="minilm",
    unet=UNetConfig(model_channels=32, num_res_blocks=1, channel_mult=(1,),
                    attention_resolutions=(), dims=2, num_head_channels=32,
                    task_token_channels=8))


METHODS = """## Methods (what each knob means)

- **DTS** (`dts_planner.diffusion.DTSSampler`): draft stride 10, target stride 2, chunk k,
  threshold lambda0 (absolute L2 over the plan in model space), increment 1.5 per round. Shipped =
  `config/planner.yaml`. lambda0 = 0 rejects every draft (= DDIM-50 exactly); lambda0 = 1e9 accepts
  every draft.
- **ParaDiGMS** (`dts_planner.peers.ParadigmsSampler`): Picard iterations over a sliding window
  of w steps of DDIM-N (or DDPM-100), stepping with diffusers' `DDIMParallelScheduler` /
  `DDPMParallelScheduler.batch_step_no_noise` on our betas; a state is accepted while its squared
  change per element, over the scheduler variance, is <= tol^2. Converges to our sequential DDIM-N
  (AVDC times; N must divide 100) or to DDPM-100 with the same step noise (tol = 0: exactly).
- **SRDS** (`dts_planner.peers.SRDSSampler`): parareal over DDIM-N with round(sqrt N) segments:
  coarse = one DDIM step per segment, fine = the segment's DDIM steps, batched across segments;
  `it` predictor-corrector iterations (it = 0: coarse DDIM only; it = segments: exactly DDIM-N),
  early stop when the plan changes by < 0.1 (0-255 units, mean absolute).
- **SDVG block speculative planning** (`dts_planner.peers.BlockSpeculativeSampler`): a long plan
  of several blocks; block b > 0 is conditioned on block b-1's last frame; the drafter proposes
  each block after the first and the quality router keeps it when its worst frame scores >= tau.

Reproduce: `python -m dts_planner.bench report --model default --threads 1` (options: `--seeds`,
`--blocks`, `--draft-steps`, `--eval-csv`, `--tiny` for a seconds-long smoke run).
"""


@dataclass(frozen=True)
class Case:
    """One method at one knob setting."""

    method: str                      # "DTS", "ParaDiGMS", "SRDS", "DDIM", "DPM-Solver++", ...
    knob: str                        # e.g. "lambda0=11 k=6"
    sampler: Sampler
    sweep: str = ""                  # which frontier curve it belongs to ("threshold", ...)


@dataclass(eq=False)
class Measured:
    """Per-seed measurements of one case."""

    case: Case
    seconds: list[float] = field(default_factory=list)
    nfe: list[int] = field(default_factory=list)
    depth: list[int] = field(default_factory=list)
    psnr: list[float] = field(default_factory=list)
    psnr_ode: list[float] = field(default_factory=list)   # vs the DDIM ODE reference

    @property
    def time(self) -> float:
        """Median wall-clock (s)."""
        return statistics.median(self.seconds)

    @property
    def fidelity(self) -> float:
        """Mean PSNR (dB) vs the DDPM-100 reference."""
        return statistics.fmean(self.psnr)

    @property
    def fidelity_ode(self) -> float:
        """Mean PSNR (dB) vs the DDIM ODE reference."""
        return statistics.fmean(self.psnr_ode)


@dataclass(frozen=True)
class Problem:
    """One seed: initial noise (1, F*3, H, W), conditioning and the step-noise seed."""

    seed: int
    noise: Tensor
    cond: dict[str, Tensor]

    def generator(self) -> torch.Generator:
        """Fresh step-noise generator: every sampler of this seed draws the same noise."""
        return torch.Generator().manual_seed(10_000 + self.seed)


@contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Run the body with ``count`` torch threads (None: unchanged), then restore the count.

    On a loaded 2-core machine one thread is often many times faster than two (no spinning).
    """
    previous = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def load_model(spec: str, tiny: bool) -> VideoDiffusionModel:
    """Load ``default`` (shipped weights), ``random`` (default-shaped random U-Net) or a path."""
    if tiny:
        return random_video_model(TINY_CONFIG)
    if spec == "random":
        return random_video_model(DEFAULT_CONFIG)
    return load_video_model(None if spec == "default" else spec).eval()


def make_problems(model: VideoDiffusionModel, seeds: int, metaworld: bool) -> list[Problem]:
    """Seeded noise (1, F*3, H, W) and conditioning per seed.

    ``metaworld``: the first camera frame of a Meta-World episode (task ``DEFAULT_TASKS[seed %
    5]``, variation ``seed``) and its instruction; else random (the samplers bench's).
    """
    conds = (metaworld_conditions(model, seeds) if metaworld else
             [random_condition(model, 1, seed) for seed in range(seeds)])
    return [Problem(seed, torch.randn(model.noise_shape(1),
                                      generator=torch.Generator().manual_seed(seed)), cond)
            for seed, cond in enumerate(conds)]


def metaworld_conditions(model: VideoDiffusionModel, seeds: int) -> list[dict[str, Tensor]]:
    """Model conditioning from Meta-World first frames and instructions (imports the sim)."""
    from dts_planner.models.text_encoders import make_text_encoder
    from dts_planner.models.preprocessing import prepare_image
    from dts_planner.sim import DEFAULT_TASKS, MetaWorldEnv

    encoder = make_text_encoder(model.config.text_encoder)
    conds = []
    for seed in range(seeds):
        task = DEFAULT_TASKS[seed % len(DEFAULT_TASKS)]
        with MetaWorldEnv(task, seed=seed, resolution=max(model.config.image_size)) as env:
            rgb, instruction = env.reset().rgb, env.instruction
        frame = prepare_image(rgb, model.config.image_size, model.config.preprocess)
        conds.append(model.make_cond(image_to_cond(torch.from_numpy(frame)[None]),
                                     encoder.encode([instruction])))
    return conds


def sweep_cases(tiny: bool) -> list[Case]:
    """Every method and knob of the frontier (a cut-down set for ``--tiny``)."""
    if tiny:
        return [Case("DTS", "shipped", DTSSampler(), "shipped"),
                Case("ParaDiGMS", "DDIM-10 w=4 tol=0.1", ParadigmsSampler(10, 4, 0.1), "ddim"),
                Case("SRDS", "DDIM-16 it=1", SRDSSampler(16, max_iterations=1), "ddim")]
    cases = [Case("DDIM", f"{n} steps", DDIMSampler(n), "sequential") for n in (10, 20, 50)]
    cases += [Case("DPM-Solver++", f"{n} steps", DPMSolverSampler(n), "sequential")
              for n in (10, 20)]
    cases.append(Case("DTS", "shipped (lambda0=11 k=6)", DTSSampler(), "shipped"))
    cases += [Case("DTS", f"lambda0={value:g}", DTSSampler(threshold=value), "threshold")
              for value in (0.0, 1.0, 2.0, 3.0, 5.5, 1e9)]
    cases += [Case("DTS", f"k={k}", DTSSampler(chunk=k), "chunk") for k in (2, 4, 8, 10)]
    cases += [Case("DTS", f"target stride 5 k={k}", DTSSampler(target_stride=5, chunk=k),
                   "target stride 5") for k in (6, 10)]
    cases += [Case("ParaDiGMS", f"DDIM-{n} w={w} tol={tol:g}", ParadigmsSampler(n, w, tol),
                   f"ddim{n}")
              for n, w, tol in ((50, 8, 0.1), (50, 16, 0.1), (50, 8, 1.0), (20, 4, 0.1),
                                (20, 8, 1.0), (10, 4, 0.1), (10, 10, 1.0))]
    cases.append(Case("ParaDiGMS", "DDPM-100 w=8 tol=0.1",
                      ParadigmsSampler(100, 8, 0.1, kind="ddpm"), "ddpm100"))
    cases += [Case("SRDS", f"DDIM-{n} it={it}", SRDSSampler(n, max_iterations=it), f"ddim{n}")
              for n, it in ((50, 0), (50, 1), (50, 2), (25, 1), (25, 2))]
    return cases


def plan_psnr(plan: Tensor, reference: Tensor) -> float:
    """PSNR (dB) of a plan against a reference plan, capped at PSNR_CAP for identical ones."""
    return min(PSNR_CAP, fidelity(plan, reference)[1])


def run(sampler: Sampler, model: VideoDiffusionModel, problem: Problem,
        noise: Tensor | None = None) -> SampleResult:
    """Sample one problem (from ``noise`` if given) with the problem's step-noise generator."""
    return sampler.sample(model, problem.noise if noise is None else noise, problem.cond,
                          problem.generator())


def measure(model: VideoDiffusionModel, cases: Sequence[Case], problems: Sequence[Problem],
            ode_steps: int, log: Callable[[str], None]) -> tuple[Measured, list[Measured]]:
    """Run the references and every case on every problem, seeds outermost (interleaved).

    Returns the DDPM-100 reference and the cases, the first of which is the DDIM-``ode_steps``
    ODE reference (a sequential case itself).
    """
    ref = Measured(Case("DDPM", "100 steps (reference)", DDPMSampler(), "reference"))
    ode = Measured(Case("DDIM", f"{ode_steps} steps (ODE reference)", DDIMSampler(ode_steps),
                        "sequential"))
    results = [ode] + [Measured(case) for case in cases]
    for problem in problems:
        ref_out, ode_out = run(ref.case.sampler, model, problem), run(ode.case.sampler, model,
                                                                      problem)
        _record(ref, ref_out, ref_out.sample, log, ode_out.sample)
        _record(ode, ode_out, ref_out.sample, log, ode_out.sample)
        for result in results[1:]:
            _record(result, run(result.case.sampler, model, problem), ref_out.sample, log,
                    ode_out.sample)
    return ref, results


def _record(result: Measured, out: SampleResult, reference: Tensor,
            log: Callable[[str], None], ode_reference: Tensor | None = None) -> None:
    """Append one run's wall time, NFE, depth and PSNR vs the references; log a line."""
    result.seconds.append(out.stats.wall_time)
    result.nfe.append(out.stats.nfe)
    result.depth.append(out.stats.depth)
    result.psnr.append(plan_psnr(out.sample, reference))
    if ode_reference is not None:
        result.psnr_ode.append(plan_psnr(out.sample, ode_reference))
    log(f"{result.case.method:12s} {result.case.knob:28s} {out.stats.wall_time:7.2f} s "
        f"nfe {out.stats.nfe:4d} depth {out.stats.depth:4d} psnr {result.psnr[-1]:5.1f} dB")


@dataclass
class BlockStudy:
    """SDVG tau sweep on long plans: cases (target-only first), reference = block DDPM-100."""

    num_blocks: int
    draft_steps: int
    results: list[Measured] = field(default_factory=list)
    accepted: dict[str, list[int]] = field(default_factory=dict)       # per drafted block
    psnr_vs_target: dict[str, list[float]] = field(default_factory=dict)

    def add(self, result: Measured, out: SampleResult, reference: Tensor, target_plan: Tensor,
            log: Callable[[str], None]) -> None:
        """Record one long-plan run of ``result``'s case."""
        if result not in self.results:
            self.results.append(result)
        _record(result, out, reference, log)
        self.accepted.setdefault(result.case.knob, []).extend(
            row[0] for row in out.stats.accepted_per_round[1:])
        self.psnr_vs_target.setdefault(result.case.knob, []).append(
            plan_psnr(out.sample, target_plan))

    def accept_rate(self, knob: str) -> float:
        """Fraction of drafted blocks (block 0 excluded) accepted."""
        values = self.accepted[knob]
        return statistics.fmean(values) if values else 0.0


def block_study(model: VideoDiffusionModel, problems: Sequence[Problem], num_blocks: int,
                draft_steps: int, log: Callable[[str], None]) -> BlockStudy:
    """Long plans of ``num_blocks`` blocks; target = shipped DTS, drafter = DDIM-draft_steps.

    Pass 1 runs target-only and draft-only (every draft accepted); tau is then set at the
    quartiles of the draft-only worst-frame scores and pass 2 runs those SDVG settings.
    """
    target, draft = DTSSampler(), DDIMSampler(draft_steps)
    reference = BlockSpeculativeSampler(None, DDPMSampler(), math.inf, num_blocks)
    study = BlockStudy(num_blocks, draft_steps)
    target_only = Measured(Case("target only", "DTS every block",
                                BlockSpeculativeSampler(None, target, math.inf, num_blocks)))
    draft_only = Measured(Case("draft only", "tau=-inf",
                               BlockSpeculativeSampler(draft, target, -math.inf, num_blocks)))
    noises = [torch.randn(problem.noise.shape, generator=torch.Generator().manual_seed(
        20_000 + problem.seed)) for problem in problems]
    plans, scores = [], []
    for problem, noise in zip(problems, noises):
        ref_plan = run(reference, model, problem, noise).sample
        target_plan = run(target_only.case.sampler, model, problem, noise)
        study.add(target_only, target_plan, ref_plan, target_plan.sample, log)
        drafted = run(draft_only.case.sampler, model, problem, noise)
        study.add(draft_only, drafted, ref_plan, target_plan.sample, log)
        scores += [min(frames) for block in drafted.stats.router_scores for frames in block
                   if frames]
        plans.append((ref_plan, target_plan.sample))
    quantiles = (0.25, 0.5, 0.75)
    sdvg = [Measured(Case("SDVG", f"tau={tau:.1f} dB (q{int(q * 100)})",
                          BlockSpeculativeSampler(draft, target, tau, num_blocks)))
            for tau, q in zip(np.quantile(scores, quantiles).tolist(), quantiles)]
    for problem, noise, (ref_plan, target_plan) in zip(problems, noises, plans):
        for result in sdvg:
            study.add(result, run(result.case.sampler, model, problem, noise), ref_plan,
                      target_plan, log)
    return study


def fidelity_of(result: Measured, ode: bool) -> float:
    """Mean PSNR (dB) vs the ODE reference if ``ode``, else vs DDPM-100."""
    return result.fidelity_ode if ode else result.fidelity


def equal_fidelity(dts: Measured, results: Sequence[Measured], method: str,
                   ode: bool) -> Measured | None:
    """Fastest case of ``method`` within the slack of DTS's fidelity (vs DDPM, or the ODE)."""
    eligible = [result for result in results if result.case.method == method
                and fidelity_of(result, ode) >= fidelity_of(dts, ode) - EQUAL_FIDELITY_SLACK]
    return min(eligible, key=lambda result: result.time, default=None)


def equal_fidelity_table(dts: Measured, results: Sequence[Measured], ode: bool) -> list[str]:
    """Markdown lines: per peer, its fastest config at DTS's fidelity, and the verdict."""
    reference = results[0].case.knob.split()[0] if ode else "100"
    lines = [f"Fidelity = PSNR vs {'DDIM' if ode else 'DDPM'}-{reference}. DTS as shipped: "
             f"{dts.time:.3f} s, {fidelity_of(dts, ode):.2f} dB; a peer counts as equal within "
             f"{EQUAL_FIDELITY_SLACK} dB.", "",
             "| peer | fastest config at DTS fidelity | its time (s) | its PSNR (dB) | "
             "DTS speed-up |", "|---|---|---|---|---|"]
    for method in ("ParaDiGMS", "SRDS", "DDIM", "DPM-Solver++"):
        peer = equal_fidelity(dts, results, method, ode)
        lines.append(f"| {method} | none reaches it | - | - | - |" if peer is None else
                     f"| {method} | {peer.case.knob} | {peer.time:.3f} | "
                     f"{fidelity_of(peer, ode):.2f} | {peer.time / dts.time:.2f}x |")
    peers = [peer for peer in (equal_fidelity(dts, results, method, ode)
                               for method in ("ParaDiGMS", "SRDS")) if peer is not None]
    if peers:
        ratio = min(peer.time for peer in peers) / dts.time
        lines += ["", f"**Target (>= 1.2x over the best of ParaDiGMS and SRDS): "
                  f"{'met' if ratio >= 1.2 else 'NOT met'}, {ratio:.2f}x.**"]
    else:
        lines += ["", "**Target: met - neither ParaDiGMS nor SRDS reaches DTS's fidelity.**"]
    return lines


def plot_frontier(ref: Measured, results: Sequence[Measured], path: Path, x_depth: bool) -> None:
    """Fidelity (vs DDPM-100, and vs the ODE reference) against wall-clock or depth, one PNG.

    Each method and sweep is one curve. Samplers of the DDPM path (ParaDiGMS DDPM) sit far
    above the others against DDPM-100 and are left off that panel's scale (see the table).
    """
    figure, panels = plt.subplots(1, 2, figsize=(13, 5.5))
    groups: dict[tuple[str, str], list[Measured]] = {}
    for result in results:
        groups.setdefault((result.case.method, result.case.sweep), []).append(result)
    for axes, ode in zip(panels, (False, True)):
        axes.set_prop_cycle(color=plt.cm.tab20.colors)
        for (method, sweep), members in groups.items():
            xs = np.array([statistics.median(m.depth) if x_depth else m.time for m in members])
            ys = np.array([fidelity_of(m, ode) for m in members])
            order = np.argsort(xs)
            axes.plot(xs[order], ys[order], marker="*" if sweep == "shipped" else "o",
                      markersize=14 if sweep == "shipped" else 5,
                      label=f"{method} {sweep}".strip())
        on_scale = [fidelity_of(r, ode) for r in results
                    if ode or not r.case.sweep.startswith("ddpm")]
        axes.set_ylim(min(on_scale) - 0.5, min(max(on_scale), PSNR_CAP - 40) + 0.5)
        axes.axvline(statistics.median(ref.depth) if x_depth else ref.time, color="gray",
                     linestyle=":", label="DDPM-100 (reference)")
        axes.set_xscale("log")
        axes.set_xlabel("sequential model calls (depth)" if x_depth
                        else "wall-clock per plan (s)")
        axes.set_ylabel(f"PSNR vs {results[0].case.method}-{results[0].case.knob.split()[0]} "
                        "plan (dB)" if ode else "PSNR vs DDPM-100 plan (dB)")
        axes.grid(True, which="both", alpha=0.3)
    panels[1].legend(fontsize=7, ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_blocks(study: BlockStudy, path: Path) -> None:
    """SDVG: fidelity vs speed-up over target-only, one point per tau."""
    base = study.results[0].time
    figure, axes = plt.subplots(figsize=(6, 4.5))
    for result in study.results:
        axes.scatter(base / result.time, result.fidelity)
        axes.annotate(f"{result.case.method} {result.case.knob}", (base / result.time,
                      result.fidelity), fontsize=7)
    axes.set_xlabel("speed-up over target-only long plan (x)")
    axes.set_ylabel("PSNR vs block DDPM-100 plan (dB)")
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def machine_line() -> str:
    """CPU model, cores, torch threads, load average and the git commit that ran."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    commit = _git("rev-parse", "--short", "HEAD") or "no commit"
    dirty = " + uncommitted changes" if _git("status", "--porcelain", "--untracked-files=no") \
        else ""
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return (f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} with "
            f"{torch.get_num_threads()} threads, load average {load}; commit {commit}{dirty}; "
            "no GPU lent to this run")


def _git(*args: str) -> str:
    """Output of a read-only git command in the repository, '' on failure."""
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                              check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _row(result: Measured, base: float) -> str:
    """Return the markdown table row of one case."""
    return (f"| {result.case.method} | {result.case.knob} | {result.time:.3f} | "
            f"{base / result.time:.2f}x | {statistics.fmean(result.nfe):.0f} | "
            f"{statistics.median(result.depth):.0f} | {result.fidelity:.2f} | "
            f"{result.fidelity_ode:.2f} |")


def render_markdown(ref: Measured, results: Sequence[Measured], study: BlockStudy,
                    args: argparse.Namespace, model_line: str, started: str,
                    eval_table: str) -> str:
    """Return the whole docs/benchmarks.md text."""
    dts = next(result for result in results if result.case.sweep == "shipped")
    ode = results[0]
    header = ("| method | knob | wall-clock (s, median) | vs DDPM-100 | NFE | depth | "
              f"PSNR vs DDPM-100 (dB) | PSNR vs {ode.case.method}-{ode.case.knob.split()[0]} "
              "(dB) |\n|---|---|---|---|---|---|---|---|")
    lines = [
        "# Benchmarks: DTS vs ParaDiGMS, SRDS, sequential samplers and SDVG block planning", "",
        f"Generated by `{args.command_line}` on {started}.", "",
        f"- Machine: {machine_line()}.",
        f"- Model: {model_line}; {args.seeds} seeds (same noise, conditioning and step-noise "
        "seed for every method); wall-clock = median over seeds, methods interleaved per seed.",
        "- Fidelity: PSNR (image space [0, 1], clamped) of the plan against the DDPM-100 plan "
        "from the same noise and "
        f"step noise (identical plans shown as {PSNR_CAP:.0f} dB). NFE = sample-evaluations "
        "(batch entries summed), depth = sequential model calls.", "",
        "![speed vs fidelity](img/frontier_wallclock.png)", "",
        "![depth vs fidelity](img/frontier_depth.png)", "",
        "## Equal-fidelity comparison (target: DTS as shipped >= 1.2x faster than the best "
        "of ParaDiGMS and SRDS)", ""]
    lines += equal_fidelity_table(dts, results, ode=False)
    lines += ["", "The same against the deterministic ODE solution (how close each sampler gets "
              "to the DDIM reference plan from the same noise; PSNR vs the stochastic DDPM-100 "
              "plan favours smooth few-step plans):", ""]
    lines += equal_fidelity_table(dts, results, ode=True)
    lines += ["", "## All methods and knobs", "", header, _row(ref, ref.time)]
    lines += [_row(result, ref.time) for result in results]
    base = study.results[0]
    lines += [
        "", f"## Block speculative planning (SDVG): {study.num_blocks} blocks, "
        f"drafter DDIM-{study.draft_steps}, target DTS as shipped", "",
        "Block b > 0 is conditioned on the last frame of block b-1; block 0 is always the "
        "target's. Router: worst-frame denoising consistency (dB; the target model re-predicts "
        "x0 from the drafted frames noised to t=20, PSNR per frame, minimum over frames); tau "
        "at quantiles of the drafted blocks' scores. Reference: the same long plan with "
        "DDPM-100 for every block. Target: >= 1.5x over target-only at >= 95% of its fidelity.",
        "", "![SDVG tau sweep](img/block_speculative.png)", "",
        "| case | knob | wall-clock (s) | speed-up vs target-only | drafts accepted | "
        "PSNR vs block DDPM-100 (dB) | fidelity retained | PSNR vs target-only (dB) |",
        "|---|---|---|---|---|---|---|---|"]
    for result in study.results:
        knob = result.case.knob
        lines.append(
            f"| {result.case.method} | {knob} | {result.time:.3f} | "
            f"{base.time / result.time:.2f}x | {study.accept_rate(knob):.0%} | "
            f"{result.fidelity:.2f} | {result.fidelity / base.fidelity:.1%} | "
            f"{statistics.fmean(study.psnr_vs_target[knob]):.2f} |")
    lines += ["", block_verdict(study), "", "## Closed-loop success (Meta-World)", "",
              eval_table, "", METHODS]
    return "\n".join(lines)


def block_verdict(study: BlockStudy) -> str:
    """Return the SDVG target line: best speed-up over target-only at >= 95% fidelity."""
    base = study.results[0]
    kept = [result for result in study.results[1:]
            if result.fidelity >= 0.95 * base.fidelity]
    if not kept:
        return "**Target (>= 1.5x at >= 95% fidelity): NOT met - no setting keeps 95%.**"
    best = min(kept, key=lambda result: result.time)
    speedup = base.time / best.time
    return (f"**Target (>= 1.5x at >= 95% fidelity): {'met' if speedup >= 1.5 else 'NOT met'}, "
            f"{speedup:.2f}x with {best.case.method} {best.case.knob} "
            f"({best.fidelity / base.fidelity:.1%} of the target-only fidelity).**")


def eval_section(path: Path | None) -> str:
    """Return the closed-loop table from the evaluation's CSV, or a marked placeholder."""
    if path is None or not path.exists():
        return ("<!-- CLOSED-LOOP: fill from `python -m dts_planner.eval metaworld` "
                "(or rerun this report with --eval-csv PATH) -->\n_Not measured in this run._")
    with path.open() as handle:
        rows = list(csv.reader(handle))
    table = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    table += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return f"From `{path}`:\n\n" + "\n".join(table)


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
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md",
                        help="markdown output; plots go to img/ beside it")
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
