"""The calibration measurement: distances, fidelity and time of every candidate, forward costs.

Steps (``calibrate``), every sampler run on every calibration plan (the plans outermost, so a
change of machine load hits all configurations alike):

1. reference: DDIM-100 per plan (the ODE solution the candidates approximate);
2. distance probes: per DTS target stride, one DTS run with threshold 0 drafting to the end in
   every round; its per-round RMS distances are the plan's distance table
   (``calibration.thresholds``);
3. thresholds: for each chunk, target stride and target acceptance, ``rank_thresholds`` (the
   best fit first, runners-up kept);
4. candidates: DDIM-N, DPM-Solver++ N, the calibrated DTS grid, ParaDiGMS and SRDS (specs of
   the sampler registry): fidelity (PSNR vs the reference, dB, the bench's ``plan_psnr``),
   NFE, depth, per-call batch sizes, wall time, DTS acceptance and distances per round. A DTS
   fit whose acceptance on the plans misses its target by more than the tolerance is replaced
   by the first runner-up that meets it (or the closest of ``VERIFY_TRIES`` tried);
5. forward cost per batch size (``bench.samplers.measure_forward_costs``, round-robin), in
   slices after each plan's candidates (``ForwardCosts``);
6. the cost model's overhead (median measured / model-call time, over all candidates and per
   sampler), predictions, the frontier and the chosen configuration per budget.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
import os
import statistics
import sys
import time
from typing import Callable, Iterable, Sequence

import torch
from tqdm import tqdm

from dts_planner.bench.common import machine_line
from dts_planner.bench.samplers import measure_forward_costs
from dts_planner.bench.sweeps import plan_psnr, Problem, run
from dts_planner.calibration import (BudgetChooser, Calibration, MeasuredConfig, pareto_frontier,
                                     rank_thresholds, sampler_of, ThresholdFit)
from dts_planner.diffusion import DTSSettings, parse_spec, SampleResult, SamplerSettings
from dts_planner.models import VideoDiffusionModel

BUDGETS_S = (0.1, 0.2, 0.4, 0.8)
VERIFY_TRIES = 4                           # DTS fits tried per target when the best one misses
PROBE_THRESHOLD = 0.0                      # rejects every first token: round r starts at step r


@dataclass(frozen=True)
class Grid:
    """The candidate configurations (sampler specs) and the DTS threshold grid."""

    fixed: tuple[str, ...] = (
        *(f"ddim:num_steps={n}" for n in (5, 8, 10, 12, 15, 20, 25, 30, 35, 40, 45, 50)),
        *(f"dpm_solver:num_steps={n}" for n in (5, 8, 10, 12, 15, 20, 25, 30)),
        "paradigms:num_steps=10,window=4", "paradigms:num_steps=10,window=10,tolerance=1.0",
        "paradigms:num_steps=20,window=4", "paradigms:num_steps=20,window=8,tolerance=1.0",
        "paradigms:num_steps=50,window=8,tolerance=1.0",
        "srds:num_steps=25,max_iterations=1", "srds:num_steps=50,max_iterations=0",
        "srds:num_steps=50,max_iterations=1", "srds:num_steps=16,max_iterations=1")
    dts_chunks: tuple[int, ...] = (2, 4, 6, 10)
    dts_target_strides: tuple[int, ...] = (2, 5)
    targets: tuple[float, ...] = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)
    reference: str = "ddim:num_steps=100"
    budgets_s: tuple[float, ...] = BUDGETS_S
    cost_repeats: int = 10

    @classmethod
    def small(cls) -> Grid:
        """Return a seconds-long grid for tests and smoke runs."""
        return cls(fixed=("ddim:num_steps=5", "dpm_solver:num_steps=5",
                          "paradigms:num_steps=10,window=4", "srds:num_steps=16,max_iterations=1"),
                   dts_chunks=(3,), dts_target_strides=(5,), targets=(1.0, 0.8, 0.6, 0.4),
                   reference="ddim:num_steps=20", cost_repeats=2)


@dataclass
class Runs:
    """Per-plan results of one configuration."""

    settings: SamplerSettings
    label: str
    family: str
    seconds: list[float] = field(default_factory=list)
    psnr: list[float] = field(default_factory=list)
    nfe: list[int] = field(default_factory=list)
    depth: list[int] = field(default_factory=list)
    batch_sizes: list[list[int]] = field(default_factory=list)
    rounds: list[int] = field(default_factory=list)
    accepted: int = 0
    drafted: int = 0
    round_distances: list[list[float]] = field(default_factory=list)   # per round, all plans
    fit: ThresholdFit | None = None

    def add(self, out: SampleResult, reference: torch.Tensor) -> None:
        """Record one plan's stats and fidelity."""
        stats = out.stats
        self.seconds.append(stats.wall_time)
        self.psnr.append(plan_psnr(out.sample, reference))
        self.nfe.append(stats.nfe)
        self.depth.append(stats.depth)
        self.batch_sizes.append(list(stats.batch_sizes))
        self.rounds.append(stats.rounds)
        self.accepted += sum(map(sum, stats.accepted_per_round))
        self.drafted += sum(map(sum, stats.accepted_per_round)) + sum(
            map(sum, stats.rejected_per_round))
        for index, per_sample in enumerate(stats.distances):
            while len(self.round_distances) <= index:
                self.round_distances.append([])
            self.round_distances[index] += [d for row in per_sample for d in row]

    @property
    def acceptance(self) -> float | None:
        """Pooled accepted / drafted draft tokens (None for samplers that draft nothing)."""
        return self.accepted / self.drafted if self.drafted else None

    def record(self) -> MeasuredConfig:
        """Return the configuration's entry of the calibration file (predicted_s set later)."""
        return MeasuredConfig(
            self.settings.spec(full=True), self.label, self.family,
            _r(statistics.fmean(self.psnr)),
            statistics.fmean(self.nfe), statistics.fmean(self.depth), self.batch_sizes,
            _r(statistics.median(self.seconds), 5), acceptance=_r(self.acceptance))


def _r(value: float | None, digits: int = 4) -> float | None:
    """Round for the file (None stays None)."""
    return None if value is None else round(float(value), digits)


FAMILIES = {"ddim": "DDIM", "dpm_solver": "DPM-Solver++", "dts": "DTS",
            "paradigms": "ParaDiGMS", "srds": "SRDS", "ddpm": "DDPM"}


def label_of(settings: SamplerSettings) -> str:
    """Short human label of a configuration, e.g. ``DDIM-10`` or ``DTS k=6 st=2 a=0.7``."""
    values = settings.to_dict()
    name = settings.name
    if name in ("ddim", "dpm_solver"):
        return f"{FAMILIES[name]}-{values['num_steps']}"
    if name == "paradigms":
        return f"ParaDiGMS {values['kind'].upper()}-{values['num_steps']} w={values['window']} " \
               f"tol={values['tolerance']:g}"
    if name == "srds":
        iterations = values["max_iterations"]   # 0: until converged
        rounds = f"it={iterations}" if iterations else "to convergence"
        return f"SRDS DDIM-{values['num_steps']} {rounds}"
    if name == "dts":
        return (f"DTS k={values['chunk']} st={values['target_stride']} "
                f"l0={values['threshold']:.3g} d={values['increment']:.3g}")
    return settings.spec(full=True)


def dts_spec(base: DTSSettings, chunk: int, target_stride: int, fit: ThresholdFit) -> DTSSettings:
    """Return ``base`` with this chunk, target stride and fitted RMS thresholds."""
    return replace(base, chunk=chunk, target_stride=target_stride, distance="rms",
                   threshold=fit.threshold, increment=fit.increment)


def calibrate(model: VideoDiffusionModel, problems: Sequence[Problem], grid: Grid,
              target: float, base: DTSSettings, *, model_info: dict, device_name: str,
              tolerance: float = 0.1, progress: bool = True,
              log: Callable[[str], None] = print) -> Calibration:
    """Measure everything (module docstring) and return the calibration (not yet saved)."""
    started = time.perf_counter()
    schedule = model.schedule
    steps = schedule.num_train_timesteps // base.draft_stride
    strides = sorted(set(grid.dts_target_strides) | {base.target_stride})
    chunks = sorted(set(grid.dts_chunks) | {base.chunk})
    targets = sorted(set(grid.targets) | {target}, reverse=True)
    reference = parse_spec(grid.reference)
    probes = {s_t: replace(base, target_stride=s_t, chunk=steps, distance="rms",
                           threshold=PROBE_THRESHOLD, increment=0.0, max_rounds=0)
              for s_t in strides}
    for settings in [reference, *probes.values()]:
        settings.require(schedule)

    # 1-2. references and distance tables
    refs: list[torch.Tensor] = []
    tables: dict[int, list[list[list[float]]]] = {s_t: [] for s_t in strides}
    bar = tqdm(total=len(problems) * (1 + len(probes)), desc="references, distance probes",
               disable=not progress, file=sys.stderr, dynamic_ncols=True)
    with torch.inference_mode():
        for problem in problems:
            refs.append(run(reference.build(), model, problem).sample)
            bar.update()
            for s_t, settings in probes.items():
                out = run(settings.build(), model, problem)
                tables[s_t].append([[round(d, 7) for d in per_sample[0]]
                                    for per_sample in out.stats.distances])
                bar.update()
    bar.close()

    # 3. thresholds per (target stride, chunk, target): the best fit and its runners-up
    runs: dict[str, Runs] = {}
    for spec in grid.fixed:
        settings = parse_spec(spec)
        settings.require(schedule)
        runs.setdefault(settings.spec(full=True), Runs(
            settings, label_of(settings), FAMILIES.get(settings.name, settings.name)))
    ranked: dict[tuple[int, int, float], list[DTSSettings]] = {}
    for s_t in strides:
        for k in chunks:
            for value in targets:
                fits = rank_thresholds(tables[s_t], k, value, base.progression,
                                       limit=VERIFY_TRIES)
                ranked[s_t, k, value] = [dts_spec(base, k, s_t, fit) for fit in fits]
                for settings, fit in zip(ranked[s_t, k, value], fits):
                    runs.setdefault(settings.spec(full=True), Runs(
                        settings, label_of(settings), "DTS", fit=fit))
    chosen = {key: settings[0].spec(full=True) for key, settings in ranked.items()}
    grid_specs = [spec for spec in runs if runs[spec].settings.name != "dts"]
    grid_specs += list(dict.fromkeys(chosen.values()))

    # 4. every candidate on every plan; then verify the acceptance of each DTS fit and measure
    # the runners-up of those that miss the target by more than the tolerance
    costs = ForwardCosts(model, problems[0], max(2, -(-grid.cost_repeats // len(problems))))
    measure_runs(model, problems, refs, [runs[spec] for spec in grid_specs], "candidates",
                 progress, after_plan=lambda: costs.measure(runs.values()))
    for attempt in range(1, VERIFY_TRIES):
        missed = [key for key, spec in chosen.items()
                  if abs(runs[spec].acceptance - key[2]) > tolerance
                  and len(ranked[key]) > attempt]
        extra = list(dict.fromkeys(ranked[key][attempt].spec(full=True) for key in missed))
        extra = [spec for spec in extra if not runs[spec].seconds]
        if not missed:
            break
        log(f"{len(missed)} DTS fits missed their target acceptance by > {tolerance:g} on the "
            f"calibration plans: measuring runner-up thresholds ({len(extra)} configurations)")
        measure_runs(model, problems, refs, [runs[spec] for spec in extra],
                     f"verification {attempt}", progress)
        for key in missed:
            tried = [settings.spec(full=True) for settings in ranked[key][:attempt + 1]]
            chosen[key] = min(tried, key=lambda spec: abs(runs[spec].acceptance - key[2]))
    runs = {spec: entry for spec, entry in runs.items() if entry.seconds}

    # 5. forward cost per batch size: measured after each plan's candidates (above), and here
    # the batch sizes only the verification runs used
    costs.measure(runs.values(), max(2, grid.cost_repeats // 2))
    log(f"forward cost of batch sizes {sorted(costs.samples)}: {costs.repeats} calls each "
        f"after each plan's candidates, round-robin")

    # 6. cost model, predictions, frontier, budgets
    records = [entry.record() for entry in runs.values()]
    calibration = Calibration(
        model_hash=model_info["hash"], device=device_description(device_name),
        target_acceptance=target, dts={},
        distances=[{"draft_stride": base.draft_stride, "target_stride": s_t,
                    "tables": tables[s_t]} for s_t in strides],
        forward_cost_ms={size: round(1000 * cost, 4) for size, cost in costs.seconds().items()},
        overhead=1.0, candidates=records, model=dict(model_info))
    ratios: dict[str, list[float]] = {}
    for record in records:
        model_s = calibration.predict_s(record.batch_sizes)     # overhead 1 so far
        ratios.setdefault(sampler_of(record.spec), []).append(record.time_s / model_s)
    calibration.overhead = round(statistics.median(r for v in ratios.values() for r in v), 4)
    calibration.overhead_by_sampler = {name: round(statistics.median(values), 4)
                                       for name, values in ratios.items()}
    for record in records:
        record.predicted_s = round(calibration.predict_s(record.batch_sizes,
                                                         sampler_of(record.spec)), 5)
    candidates = calibration.budget_candidates()
    calibration.frontier = [c.spec for c in pareto_frontier(candidates)]
    chooser = BudgetChooser(candidates)
    by_spec = {c.spec: c for c in records}
    for budget in grid.budgets_s:
        choice = chooser.choose(budget)
        picked = by_spec[choice.spec]
        calibration.budgets.append({
            "budget_s": budget, "spec": picked.spec, "label": picked.label,
            "predicted_s": picked.predicted_s, "time_s": picked.time_s,
            "fidelity_db": picked.fidelity_db, "miss": choice.miss})
    for (s_t, k, value), spec in chosen.items():
        entry, record = runs[spec], by_spec[spec]
        assert entry.fit is not None
        calibration.acceptance_table.append({
            "target": value, "chunk": k, "target_stride": s_t, "spec": spec,
            "threshold": entry.fit.threshold, "increment": entry.fit.increment,
            "predicted_acceptance": _r(entry.fit.acceptance),
            "retained": _r(entry.fit.retained, 6),
            "achieved_acceptance": record.acceptance, "fidelity_db": record.fidelity_db,
            "time_s": record.time_s, "predicted_s": record.predicted_s, "nfe": record.nfe,
            "depth": record.depth, "rounds": _r(statistics.fmean(entry.rounds), 2),
            "round_distances": [[_r(min(d), 6), _r(statistics.median(d), 6), _r(max(d), 6)]
                                for d in entry.round_distances if d]})
    calibration.dts = calibrated_dts(calibration, base, target, tolerance)
    calibration.info = {
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python -m dts_planner.calibrate " + " ".join(sys.argv[1:]),
        "conditioning": model_info.get("conditioning", ""), "plans": len(problems),
        "reference": reference.spec(full=True),
        "seconds": round(time.perf_counter() - started, 1),
        "machine": machine_line()}
    return calibration


def measure_runs(model: VideoDiffusionModel, problems: Sequence[Problem],
                 refs: Sequence[torch.Tensor], entries: Sequence[Runs], desc: str,
                 progress: bool, after_plan: Callable[[], None] | None = None) -> None:
    """Run every entry on every plan (plans outermost, so load drifts hit all alike)."""
    bar = tqdm(total=len(problems) * len(entries), desc=desc, disable=not progress,
               file=sys.stderr, dynamic_ncols=True)
    with torch.inference_mode():
        for problem, ref in zip(problems, refs):
            for entry in entries:
                bar.set_postfix_str(entry.label, refresh=False)
                entry.add(run(entry.settings.build(), model, problem), ref)
                bar.update()
            if after_plan is not None:
                bar.set_postfix_str("forward cost", refresh=True)
                after_plan()
    bar.close()


class ForwardCosts:
    """Forward cost per batch size, measured in slices between the candidates' runs.

    Each slice times every batch size seen so far ``repeats`` times, round-robin
    (``bench.samplers.measure_forward_costs``); a size's cost is the median of its slices, so
    the costs see the same machine load as the candidates they predict.
    """

    def __init__(self, model: VideoDiffusionModel, problem: Problem, repeats: int) -> None:
        """Measure with ``problem``'s noise and conditioning, ``repeats`` calls per slice."""
        self.model, self.problem, self.repeats = model, problem, repeats
        self.samples: dict[int, list[float]] = {}

    def measure(self, entries: Iterable[Runs], repeats: int = 0) -> None:
        """Time one slice of the batch sizes the entries used (all, or only new ones)."""
        seen = {size for entry in entries for plan in entry.batch_sizes for size in plan} | {1}
        sizes = sorted(seen if not repeats else seen - set(self.samples))
        if not sizes:
            return
        with torch.inference_mode():
            costs = measure_forward_costs(self.model, self.problem.noise, self.problem.cond,
                                          sizes, repeats or self.repeats)
        for size, cost in costs.items():
            self.samples.setdefault(size, []).append(cost)

    def seconds(self) -> dict[int, float]:
        """Median seconds of one model call per batch size."""
        return {size: statistics.median(values) for size, values in sorted(self.samples.items())}


def calibrated_dts(calibration: Calibration, base: DTSSettings, target: float,
                   tolerance: float) -> dict:
    """Return the ``dts`` entry: the base configuration at the target, and how it did."""
    row = next(r for r in calibration.acceptance_table
               if (r["chunk"], r["target_stride"], r["target"]) ==
               (base.chunk, base.target_stride, target))
    achieved = row["achieved_acceptance"]
    return {
        "spec": row["spec"], "draft_stride": base.draft_stride,
        "target_stride": base.target_stride, "chunk": base.chunk,
        "progression": base.progression, "distance": "rms", "threshold": row["threshold"],
        "increment": row["increment"], "predicted_acceptance": row["predicted_acceptance"],
        "achieved_acceptance": achieved, "tolerance": tolerance,
        "within_tolerance": achieved is not None and abs(achieved - target) <= tolerance,
        "retained": row["retained"], "rounds": row["rounds"],
        "fidelity_db": row["fidelity_db"], "time_s": row["time_s"],
        "predicted_s": row["predicted_s"]}


def device_description(device_name: str) -> dict:
    """Describe the device: name, hardware, torch and its threads, load average."""
    device = torch.device(device_name)
    if device.type == "cuda":
        hardware = torch.cuda.get_device_name(device)
    else:
        hardware = machine_line().split(",")[0]
    return {"name": device_name, "description": f"{hardware}, {os.cpu_count()} CPU cores",
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "load_average": [round(value, 2) for value in os.getloadavg()]}


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def frame_problems(model: VideoDiffusionModel, frames_dir: str,
                   instructions: Sequence[str]) -> tuple[list[Problem], str]:
    """Plans from a folder of images (sorted by name) and one instruction each (or one for all).

    Images go through the planner's preprocessing, instructions through the model's text
    encoder; plan i starts from noise seeded i. Returns the plans and a description.
    """
    import numpy as np
    from PIL import Image

    from dts_planner.models import image_to_cond, shared_text_encoder
    from dts_planner.models.preprocessing import prepare_image

    paths = sorted(path for path in os.scandir(frames_dir)
                   if path.name.lower().endswith(IMAGE_SUFFIXES))
    if not paths:
        raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {frames_dir}")
    if len(instructions) not in (1, len(paths)):
        raise ValueError(f"give one instruction, or one per image ({len(paths)} images in "
                         f"{frames_dir}), not {len(instructions)}")
    texts = list(instructions) * (len(paths) if len(instructions) == 1 else 1)
    config = model.config
    frames = [prepare_image(np.asarray(Image.open(path.path).convert("RGB")), config.image_size,
                            config.preprocess) for path in paths]
    encoder = shared_text_encoder(config.text_encoder, "cpu")
    problems = []
    for seed, (frame, text) in enumerate(zip(frames, texts)):
        cond = model.make_cond(image_to_cond(frame[None]), encoder.encode([text]))
        noise = torch.randn(model.noise_shape(1), generator=torch.Generator().manual_seed(seed))
        problems.append(Problem(seed, noise, cond))
    return problems, f"{len(paths)} images from {frames_dir} with their instructions"


def to_device(problems: Sequence[Problem], device: torch.device) -> list[Problem]:
    """Return the plans with their noise and conditioning on ``device``."""
    return [Problem(p.seed, p.noise.to(device),
                    {key: value.to(device) for key, value in p.cond.items()})
            for p in problems]
