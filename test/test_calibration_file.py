"""Calibration on a tiny random model: file round trip, model hash check, lookup, CLI --show."""

from __future__ import annotations

from dataclasses import replace
import json

import pytest
import torch

from dts_planner.calibration import (Calibration, calibration_path, CalibrationError,
                                     file_sha256, find_calibration, FORMAT, locate_calibration)
from dts_planner.diffusion import DTSSettings, parse_spec

from conftest import CALIBRATION_TARGET as TARGET


def test_the_calibration_round_trips_through_its_file(calibrated):
    checkpoint, digest, calibration, path = calibrated
    assert path == checkpoint.with_name("tiny.calibration.json")
    loaded = Calibration.load(path, expected_model_hash=digest)
    assert loaded == calibration and loaded.source == str(path)
    assert loaded.to_dict() == json.loads(path.read_text())
    data = loaded.to_dict()
    assert data["format"] == FORMAT and data["model_hash"] == digest
    for key in ("device", "dts", "distances", "acceptance_table", "forward_cost", "overhead",
                "candidates", "budgets", "frontier"):
        assert data[key], key
    assert {row["target"] for row in data["acceptance_table"]} == {1.0, TARGET}
    for candidate in loaded.candidates:
        assert candidate.fidelity_db > 0 and candidate.time_s > 0 and candidate.predicted_s > 0
        assert len(candidate.batch_sizes) == 3
        assert candidate.depth == pytest.approx(sum(map(len, candidate.batch_sizes)) / 3)
        parse_spec(candidate.spec)
    assert [row["budget_s"] for row in loaded.budgets] == [0.1, 0.2, 0.4, 0.8]


def test_the_calibrated_dts_thresholds_give_the_target_acceptance(calibrated):
    _, _, calibration, _ = calibrated
    dts = calibration.dts
    assert dts["within_tolerance"] and abs(dts["achieved_acceptance"] - TARGET) <= 0.1
    settings = calibration.dts_settings()
    assert isinstance(settings, DTSSettings) and settings == parse_spec(dts["spec"])
    # the file's specs name every parameter: a change of a default cannot change their meaning
    assert dts["spec"].startswith("dts:draft_stride=10,target_stride=5,chunk=3,threshold=")
    for candidate in calibration.candidates:
        names = {f.name for f in parse_spec(candidate.spec).parameter_fields()}
        assert {item.partition("=")[0] for item in candidate.spec.partition(":")[2].split(",")
                } == names
    assert (settings.distance, settings.chunk, settings.target_stride) == ("rms", 3, 5)
    assert settings.threshold == dts["threshold"] and settings.increment == dts["increment"]
    assert 0 < settings.threshold < 1                     # RMS units, not the paper's L2 11


def test_dts_settings_refit_for_another_chunk_or_target_and_refuse_unknown_strides(calibrated):
    _, _, calibration, _ = calibrated
    base = DTSSettings(target_stride=5, chunk=5, max_rounds=20)
    settings = calibration.dts_settings(base)
    fit = calibration.dts_fit(5, 5)
    assert (settings.chunk, settings.max_rounds, settings.threshold) == (5, 20, fit.threshold)
    assert abs(fit.acceptance - TARGET) <= 0.15
    looser = calibration.dts_settings(base, target_acceptance=1.0)
    assert looser.threshold > settings.threshold
    with pytest.raises(CalibrationError, match="no distances for dts.draft_stride=10, "
                                               "dts.target_stride=2"):
        calibration.dts_settings(DTSSettings())


def test_a_calibration_for_another_model_is_refused_with_both_hashes(calibrated, tmp_path):
    _, digest, calibration, path = calibrated
    other = "ab" * 32
    with pytest.raises(CalibrationError) as error:
        Calibration.load(path, expected_model_hash=other)
    message = str(error.value)
    assert "\n" not in message and str(path) in message
    assert digest in message and other in message and "python -m dts_planner.calibrate" in message
    Calibration.load(path, expected_model_hash=digest[:8])          # a model_id's prefix works
    with pytest.raises(ValueError, match="8 hex"):
        Calibration.load(path, expected_model_hash="ab")
    # the planner's lookup passes it over and says why, in one line
    stranger = tmp_path / "stranger.pt"
    stranger.write_bytes(b"another model")
    foreign = calibration_path(stranger)
    foreign.write_text(path.read_text())
    assert find_calibration(stranger, file_sha256(stranger)) is None
    found, note = locate_calibration(stranger)
    assert found is None and str(foreign) in note and digest in note and "\n" not in note


@pytest.mark.parametrize("content, reason", [
    ("{not json", "cannot read"), ('{"format": "other"}', "not a dts_planner.calibration/1"),
    ('{"format": "dts_planner.calibration/1"}', "malformed")])
def test_unusable_files_are_refused_in_one_line(tmp_path, content, reason):
    path = tmp_path / "x.calibration.json"
    path.write_text(content)
    with pytest.raises(CalibrationError, match=reason) as error:
        Calibration.load(path)
    assert "\n" not in str(error.value) and str(path) in str(error.value)
    with pytest.raises(CalibrationError, match="cannot read"):
        Calibration.load(tmp_path / "missing.calibration.json")


def test_lookup_convention_search_dirs_then_next_to_the_checkpoint_per_device(
        calibrated, tmp_path):
    checkpoint, digest, calibration, path = calibrated
    assert find_calibration(checkpoint, digest) == path
    found, note = locate_calibration(checkpoint)
    assert found == calibration and str(path) in note
    # a user directory comes first; files for other models there are passed over
    user = tmp_path / "calibrations"
    user.mkdir()
    replace(calibration, model_hash="cd" * 32).save(user / "a.calibration.json")
    (user / "b.calibration.json").write_text("{broken")
    mine = calibration.save(user / "c.calibration.json")
    assert find_calibration(checkpoint, digest, [user]) == mine
    # a file of the plan's device kind wins; else any file of the model (thresholds hold)
    gpu = replace(calibration, device={**calibration.device, "name": "cuda:0"})
    gpu_path = gpu.save(calibration_path(checkpoint, "cuda:1"))
    try:
        assert gpu_path.name == "tiny.cuda.calibration.json"
        assert find_calibration(checkpoint, digest, device="cuda:0") == gpu_path
        assert find_calibration(checkpoint, digest, device="cpu") == path
        # ... even over a user directory's file of another device kind
        gpu.save(user / "0.calibration.json")
        assert find_calibration(checkpoint, digest, [user], device="cpu") == mine
        assert find_calibration(checkpoint, digest, [user], device="cuda") == user / \
            "0.calibration.json"
        gpu_path.unlink()
        assert find_calibration(checkpoint, digest, device="cuda:0") == path
        _, note = locate_calibration(checkpoint, digest, device="cuda:0")
        assert "measured on cpu, not cuda:0" in note
    finally:
        gpu_path.unlink(missing_ok=True)
    assert find_calibration(tmp_path / "none.pt", digest) is None


def test_budget_chooser_and_report_from_the_file(calibrated, tmp_path, capsys):
    from dts_planner.calibrate.__main__ import main

    _, _, calibration, path = calibrated
    chooser = calibration.chooser()
    fastest = min(calibration.budget_candidates(), key=lambda c: c.predicted_s)
    assert chooser.choose(fastest.predicted_s / 10).spec == fastest.spec
    generous = chooser.choose(1e3)
    assert not generous.miss and generous.candidate.fidelity_db == max(
        c.fidelity_db for c in calibration.candidates)
    assert set(calibration.frontier) <= {c.spec for c in calibration.candidates}
    assert main(["--show", str(path), "--png", str(tmp_path / "frontier.png")]) == 0
    out = capsys.readouterr().out
    assert "target acc." in out and "latency budgets" in out and "frontier" in out
    assert (tmp_path / "frontier.png").stat().st_size > 10_000
    assert main(["--show", str(tmp_path / "missing.json")]) == 1


def test_cost_model_of_the_file_predicts_from_batch_sizes(calibrated):
    _, _, calibration, _ = calibrated
    model = calibration.cost_model()
    one = calibration.forward_cost_ms[1] / 1000
    assert model.predict_s([1, 1]) == pytest.approx(2 * one * calibration.overhead)
    assert set(calibration.overhead_by_sampler) == {"ddim", "dpm_solver", "dts"}
    for candidate in calibration.candidates:
        sampler = candidate.spec.partition(":")[0]
        assert calibration.predict_s(candidate.batch_sizes, sampler) == pytest.approx(
            candidate.predicted_s, rel=1e-3, abs=1e-5)
        overhead = calibration.overhead_by_sampler[sampler]
        assert calibration.predict_s(candidate.batch_sizes, sampler) == pytest.approx(
            calibration.predict_s(candidate.batch_sizes) * overhead / calibration.overhead)
    assert torch.get_num_threads() == 1                   # the suite's one thread was kept


def test_a_fit_that_misses_its_target_on_the_real_plans_is_replaced_by_a_runner_up():
    from dts_planner.bench.sweeps import make_problems
    from dts_planner.calibrate.measure import calibrate, Grid
    from dts_planner.models import random_video_model, TINY_CONFIG

    model = random_video_model(TINY_CONFIG, seed=3)
    digest = "0" * 64
    grid = Grid(fixed=("ddim:num_steps=5",), dts_chunks=(3,), dts_target_strides=(5,),
                targets=(0.7,), reference="ddim:num_steps=20", cost_repeats=1, budgets_s=(1.0,))
    # on these plans the replay's best fit for 0.7 accepts 0.9 of the tokens for real
    calibration = calibrate(model, make_problems(model, 3, metaworld=False), grid, 0.7,
                            DTSSettings(target_stride=5, chunk=3), model_info={"hash": digest},
                            device_name="cpu", progress=False, log=lambda line: None)
    tried = [c for c in calibration.candidates if c.family == "DTS"]
    assert len(tried) > 1 and any(abs(c.acceptance - 0.7) > 0.1 for c in tried)
    row, = calibration.acceptance_table
    assert abs(row["achieved_acceptance"] - 0.7) <= 0.1
    assert calibration.dts["spec"] == row["spec"] and calibration.dts["within_tolerance"]


def test_the_shipped_default_model_has_its_calibration():
    from dts_planner.models import DEFAULT_WEIGHTS

    calibration, note = locate_calibration(DEFAULT_WEIGHTS, device="cpu")
    assert calibration is not None, (
        f"{note}. New default weights need a new calibration: python -m dts_planner.calibrate "
        "--model default --device cpu --threads 1 --png docs/img/calibration_frontier_cpu.png "
        "(about 6-10 min on the 2-core CPU)")
    assert calibration.dts["within_tolerance"] and calibration.dts_settings().distance == "rms"
