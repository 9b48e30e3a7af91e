"""The calibration file: what ``python -m dts_planner.calibrate`` measured (a model, a device).

Lookup convention (``find_calibration``): the directories the user names first (every
``*.calibration.json`` in them, by name, whose ``model_hash`` matches), then the files next to
the checkpoint, ``<dir>/<stem>.<kind>.calibration.json`` for a non-CPU device kind and
``<dir>/<stem>.calibration.json`` (CPU) (``calibration_path``); a file of the plan's device kind
is preferred, else any with the model's hash (thresholds hold on every device, costs do not).
The embedded default model ``dts_planner/weights/video_default.pt`` therefore finds the shipped
``dts_planner/weights/video_default.calibration.json``. A file for another model (another
sha256) never matches; ``locate_calibration`` says so in one line, naming both hashes.

JSON keys (format ``dts_planner.calibration/1``; times in s unless named ``_ms``, distances and
thresholds in per-element RMS of model space, fidelity in dB PSNR vs ``reference``): ``format``,
``model_hash`` (sha256 hex of the checkpoint file), ``model`` {path, id, hash, summary,
conditioning}, ``device`` {name, description, torch, torch_threads, load_average}, ``info``
{created, command, conditioning, plans, reference, seconds}, ``target_acceptance``, ``dts`` (the
calibrated settings: spec, draft_stride, target_stride, chunk, progression, threshold, increment
and the predicted / achieved acceptance, fidelity_db, time_s of that configuration),
``distances`` [{draft_stride, target_stride, tables: per plan, per draft step s where a chunk
starts, the distance of each token drafted from s to the end (``calibration.thresholds``)}],
``acceptance_table`` [per DTS configuration and target: target, spec, threshold, increment,
predicted_acceptance, achieved_acceptance, fidelity_db, time_s, predicted_s, nfe, depth, rounds,
round_distances (per round: min, median, max)], ``forward_cost`` [{batch, ms}], ``overhead``
(measured / model-call time, median over the candidates), ``overhead_by_sampler`` {sampler name:
the same over that sampler's candidates; used for its predictions}, ``candidates`` [{spec,
label, family, fidelity_db, nfe, depth, batch_sizes (per plan, per sequential call), time_s
(median measured), predicted_s, acceptance}], ``budgets`` [{budget_s, spec, label, predicted_s,
time_s, fidelity_db, miss}], ``frontier`` [specs on the predicted speed-fidelity frontier].
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any, Iterable, Sequence, TYPE_CHECKING

from dts_planner.calibration.budget import BudgetChooser, Candidate, CostModel, sampler_of
from dts_planner.calibration.thresholds import fit_thresholds, ThresholdFit

if TYPE_CHECKING:
    from dts_planner.diffusion import DTSSettings

FORMAT = "dts_planner.calibration/1"
SUFFIX = ".calibration.json"
RERUN = "python -m dts_planner.calibrate --model {model}"


class CalibrationError(ValueError):
    """A calibration file cannot be used (unreadable, wrong format or another model's)."""


def file_sha256(path: str | os.PathLike) -> str:
    """Return the sha256 (hex) of a checkpoint file (``planning.factory.model_id`` prints 8)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def device_kind(device: str) -> str:
    """Return the kind of a torch device string: "cuda:1" -> "cuda", "cpu" -> "cpu"."""
    return str(device).partition(":")[0].strip().lower() or "cpu"


def calibration_path(model_path: str | os.PathLike, device: str = "cpu") -> Path:
    """Return the calibration file that belongs next to a checkpoint, for a device kind.

    ``<dir>/<stem>.calibration.json`` for the CPU, ``<dir>/<stem>.<kind>.calibration.json``
    for another kind (``cuda``, ``mps``, ...).
    """
    path, kind = Path(model_path), device_kind(device)
    return path.with_name(path.stem + ("" if kind == "cpu" else f".{kind}") + SUFFIX)


def hash_matches(file_hash: str, expected: str) -> bool:
    """Whether ``expected`` (a full sha256 or a prefix of >= 8 hex digits) names ``file_hash``."""
    expected = expected.strip().lower()
    if len(expected) < 8:
        raise ValueError(f"a model hash needs at least 8 hex digits, got {expected!r}")
    return file_hash.lower().startswith(expected)


@dataclass
class MeasuredConfig:
    """One candidate configuration as calibrated (means over the calibration plans).

    fidelity_db: PSNR vs the reference; batch_sizes: per plan, the batch size of each
    sequential model call; time_s: median measured seconds per plan; predicted_s: the cost
    model's seconds; acceptance: DTS's accepted / drafted tokens (None for other samplers).
    """

    spec: str
    label: str
    family: str
    fidelity_db: float
    nfe: float
    depth: float
    batch_sizes: list[list[int]]
    time_s: float
    predicted_s: float = 0.0
    acceptance: float | None = None


@dataclass
class Calibration:
    """A calibration file in memory (the keys are the module docstring's)."""

    model_hash: str
    device: dict[str, Any]
    target_acceptance: float
    dts: dict[str, Any]
    distances: list[dict[str, Any]]
    forward_cost_ms: dict[int, float]
    overhead: float
    candidates: list[MeasuredConfig]
    overhead_by_sampler: dict[str, float] = field(default_factory=dict)
    acceptance_table: list[dict[str, Any]] = field(default_factory=list)
    budgets: list[dict[str, Any]] = field(default_factory=list)
    frontier: list[str] = field(default_factory=list)
    model: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    source: str = field(default="", compare=False)      # the file it was loaded from

    # ------------------------------------------------------------------------- file
    def to_dict(self) -> dict[str, Any]:
        """Return the file's JSON data."""
        return {
            "format": FORMAT, "model_hash": self.model_hash, "model": self.model,
            "device": self.device, "info": self.info,
            "target_acceptance": self.target_acceptance, "dts": self.dts,
            "distances": self.distances, "acceptance_table": self.acceptance_table,
            "forward_cost": [{"batch": size, "ms": cost}
                             for size, cost in sorted(self.forward_cost_ms.items())],
            "overhead": self.overhead, "overhead_by_sampler": self.overhead_by_sampler,
            "candidates": [asdict(candidate) for candidate in self.candidates],
            "budgets": self.budgets, "frontier": self.frontier,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "") -> Calibration:
        """Build from the file's JSON data; CalibrationError naming ``source`` if malformed."""
        where = source or "calibration data"
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise CalibrationError(f"{where}: not a {FORMAT} file (format {found!r})")
        try:
            names = {f.name for f in fields(MeasuredConfig)}
            calibration = cls(
                model_hash=str(data["model_hash"]), device=dict(data["device"]),
                target_acceptance=float(data["target_acceptance"]), dts=dict(data["dts"]),
                distances=list(data["distances"]),
                forward_cost_ms={int(row["batch"]): float(row["ms"])
                                 for row in data["forward_cost"]},
                overhead=float(data["overhead"]),
                overhead_by_sampler={str(name): float(value) for name, value in
                                     data.get("overhead_by_sampler", {}).items()},
                candidates=[MeasuredConfig(**{k: v for k, v in row.items() if k in names})
                            for row in data["candidates"]],
                acceptance_table=list(data.get("acceptance_table", [])),
                budgets=list(data.get("budgets", [])), frontier=list(data.get("frontier", [])),
                model=dict(data.get("model", {})), info=dict(data.get("info", {})),
                source=source)
            calibration.cost_model()
        except (KeyError, TypeError, ValueError) as error:
            raise CalibrationError(f"{where}: malformed calibration ({type(error).__name__}: "
                                   f"{error})") from None
        return calibration

    def save(self, path: str | os.PathLike) -> Path:
        """Write the file (atomically: a temporary name first); return its path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_text(dumps(self.to_dict()) + "\n")
        os.replace(partial, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, expected_model_hash: str | None = None
             ) -> Calibration:
        """Read a calibration file; refuse it if it is for another model than the one expected.

        ``expected_model_hash``: the sha256 (or >= 8 leading hex digits) of the checkpoint the
        calibration will be used with. Every failure is a one-line CalibrationError.
        """
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise CalibrationError(f"cannot read calibration file {path}: "
                                   f"{getattr(error, 'strerror', None) or error}") from None
        calibration = cls.from_dict(data, str(path))
        if expected_model_hash is not None and not hash_matches(calibration.model_hash,
                                                                expected_model_hash):
            raise CalibrationError(
                f"calibration file {path} is for model sha256 {calibration.model_hash}, not "
                f"{expected_model_hash.strip().lower()}: rerun "
                f"`{RERUN.format(model=calibration.model.get('path') or 'PATH')}` for this "
                "model")
        return calibration

    # --------------------------------------------------------------------- use
    def describe(self) -> str:
        """One line: where it came from, the model, the device and the calibrated DTS."""
        return (f"calibration {self.source or '(in memory)'}: model "
                f"{self.model.get('id') or self.model_hash[:8]}, device "
                f"{self.device.get('name', '?')}, target acceptance {self.target_acceptance:g}: "
                f"{self.dts.get('spec', '?')}")

    def cost_model(self, sampler: str | None = None) -> CostModel:
        """Return the forward cost per batch size and the overhead (of ``sampler``'s runs)."""
        return CostModel({size: ms / 1000 for size, ms in self.forward_cost_ms.items()},
                         self.overhead_by_sampler.get(sampler or "", self.overhead))

    def predict_s(self, batch_sizes: Sequence[Sequence[int]], sampler: str | None = None
                  ) -> float:
        """Predicted seconds of a configuration: the mean over plans of their call costs.

        ``batch_sizes``: per plan, the batch size of each sequential model call; ``sampler``
        (registry name) picks its measured overhead, else the overall one.
        """
        model = self.cost_model(sampler)
        return sum(model.predict_s(plan) for plan in batch_sizes) / max(len(batch_sizes), 1)

    def budget_candidates(self, specs: Iterable[str] | None = None) -> list[Candidate]:
        """Return the candidates (all, or those in ``specs``) with fidelity and predicted time."""
        wanted = None if specs is None else set(specs)
        return [Candidate(c.spec, c.fidelity_db,
                          self.predict_s(c.batch_sizes, sampler_of(c.spec)), c.label)
                for c in self.candidates if wanted is None or c.spec in wanted]

    def chooser(self, specs: Iterable[str] | None = None, **options: Any) -> BudgetChooser:
        """Return a BudgetChooser over the candidates (options: see `BudgetChooser`)."""
        return BudgetChooser(self.budget_candidates(specs), **options)

    def tables(self, draft_stride: int, target_stride: int) -> list[list[list[float]]]:
        """Per plan, the RMS distance table (``calibration.thresholds``) for these strides."""
        for entry in self.distances:
            if (entry["draft_stride"], entry["target_stride"]) == (draft_stride, target_stride):
                return entry["tables"]
        known = ", ".join(f"{e['draft_stride']}/{e['target_stride']}" for e in self.distances)
        raise CalibrationError(
            f"{self.source or 'calibration'} has no distances for dts.draft_stride="
            f"{draft_stride}, dts.target_stride={target_stride} (calibrated draft/target "
            f"strides: {known or 'none'})")

    def dts_fit(self, chunk: int | None = None, target_stride: int | None = None,
                draft_stride: int | None = None, progression: str | None = None,
                target_acceptance: float | None = None) -> ThresholdFit:
        """Thresholds for a DTS configuration (None: the calibrated one's) and target.

        The calibrated configuration at the calibrated target returns the file's thresholds;
        another chunk, progression or target refits them from the stored distances.
        """
        dts = self.dts
        key = (chunk or dts["chunk"], target_stride or dts["target_stride"],
               draft_stride or dts["draft_stride"], progression or dts["progression"],
               self.target_acceptance if target_acceptance is None else target_acceptance)
        if key == (dts["chunk"], dts["target_stride"], dts["draft_stride"], dts["progression"],
                   self.target_acceptance):
            return ThresholdFit(dts["threshold"], dts["increment"], dts["chunk"],
                                dts["progression"], self.target_acceptance,
                                dts["predicted_acceptance"], dts.get("retained", math.nan),
                                dts.get("rounds", math.nan))
        return fit_thresholds(self.tables(key[2], key[1]), key[0], key[4], key[3])

    def dts_settings(self, base: DTSSettings | None = None,
                     target_acceptance: float | None = None) -> DTSSettings:
        """Return the calibrated DTS settings, or ``base`` with calibrated (RMS) thresholds.

        ``base`` keeps its strides, chunk, progression and limits; its thresholds are fitted
        for them (``dts_fit``). CalibrationError if the file has no distances for its strides.
        """
        from dts_planner.diffusion import DTSSettings, parse_spec

        if base is None:
            base = parse_spec(self.dts["spec"])
            assert isinstance(base, DTSSettings)
        fit = self.dts_fit(base.chunk, base.target_stride, base.draft_stride, base.progression,
                           target_acceptance)
        return replace(base, distance="rms", threshold=fit.threshold, increment=fit.increment)


def find_calibration(model_path: str | os.PathLike, model_hash: str,
                     search_dirs: Sequence[str | os.PathLike] = (),
                     device: str | None = None) -> Path | None:
    """Return the calibration file for the checkpoint ``model_path`` with sha256 ``model_hash``.

    Reads, in order: every ``*.calibration.json`` in ``search_dirs`` (each sorted by name), then
    ``calibration_path(model_path, device)`` and ``calibration_path(model_path)`` (the CPU one).
    The first file whose model hash matches and whose device kind is ``device``'s wins; failing
    that, the first whose hash matches (its thresholds hold on any device, its costs do not:
    see ``Calibration.device``). Files for other models and unreadable files are passed over;
    None when nothing matches. ``device`` None: any device kind.
    """
    fallback = None
    for path in _lookup_order(model_path, search_dirs, device or "cpu"):
        try:
            data = json.loads(path.read_text())
            stored, name = data.get("model_hash", ""), data.get("device", {}).get("name", "")
        except (OSError, ValueError, AttributeError):
            continue
        if not (isinstance(stored, str) and stored and hash_matches(stored, model_hash)):
            continue
        if device is None or device_kind(name) == device_kind(device):
            return path
        fallback = fallback or path
    return fallback


def locate_calibration(model_path: str | os.PathLike, model_hash: str | None = None,
                       search_dirs: Sequence[str | os.PathLike] = (),
                       device: str | None = None) -> tuple[Calibration | None, str]:
    """Load the matching calibration, or None; with a one-line note for diagnostics and logs.

    The note says which file was used (and when it was measured on another device kind), or
    why none: the file next to the checkpoint is for another model (both hashes named, and the
    command that recalibrates), or there is none. ``model_hash`` None: computed from the file.
    """
    model_hash = model_hash or file_sha256(model_path)
    path = find_calibration(model_path, model_hash, search_dirs, device)
    if path is not None:
        calibration = Calibration.load(path, model_hash)
        note = f"thresholds from {calibration.describe()}"
        measured_on = calibration.device.get("name", "cpu")
        if device is not None and device_kind(measured_on) != device_kind(device):
            model = calibration.model.get("path") or model_path
            note += (f"; its costs were measured on {measured_on}, not {device}: run "
                     f"`{RERUN.format(model=model)} --device {device}`")
        return calibration, note
    beside = calibration_path(model_path, device or "cpu")
    for candidate in dict.fromkeys([beside, calibration_path(model_path)]):
        if candidate.is_file():
            try:
                Calibration.load(candidate, model_hash)
            except CalibrationError as error:
                return None, str(error)
    looked = [str(Path(d)) for d in search_dirs] + [str(beside)]
    return None, (f"no calibration for model sha256 {model_hash[:16]}... (looked in "
                  f"{', '.join(looked)}): run `{RERUN.format(model=model_path)}`")


def _lookup_order(model_path: str | os.PathLike, search_dirs: Sequence[str | os.PathLike],
                  device: str) -> list[Path]:
    """Return the files ``find_calibration`` reads, in order (no duplicates)."""
    paths = [path for directory in search_dirs
             for path in sorted(Path(directory).glob("*" + SUFFIX))]
    paths += [calibration_path(model_path, device), calibration_path(model_path)]
    return list(dict.fromkeys(paths))


def dumps(data: Any, indent: int = 0) -> str:
    """JSON with one key per line and lists of numbers or strings kept on one line."""
    pad, inner = " " * indent, " " * (indent + 1)
    if isinstance(data, dict):
        if not data:
            return "{}"
        items = [f"{inner}{json.dumps(str(key))}: {dumps(value, indent + 1)}"
                 for key, value in data.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(data, (list, tuple)) and any(isinstance(v, (dict, list, tuple))
                                               for v in data):
        if all(isinstance(v, (list, tuple)) and not any(isinstance(w, (dict, list, tuple))
                                                        for w in v) for v in data):
            rows = [f"{inner}{json.dumps(list(v))}" for v in data]
        else:
            rows = [f"{inner}{dumps(v, indent + 1)}" for v in data]
        return "[\n" + ",\n".join(rows) + "\n" + pad + "]"
    return json.dumps(data)
