"""docs/ros_interface.md's tables are the declarations: a test fails when they drift."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from dts_planner.ros import interface_docs, parameters, planner_parameters


def test_the_docs_match_the_declarations() -> None:
    text = interface_docs.DOCS.read_text()
    assert interface_docs.render(text) == text, (
        "docs/ros_interface.md drifted; run: python -m dts_planner.ros.interface_docs")
    for spec in (*planner_parameters.PLANNER_PARAMS, *parameters.PREDICTOR_PARAMS,
                 *parameters.BRIDGE_PARAMS):
        assert f"| `{spec.name}` |" in text, spec.name
    assert "one of: dts, ddim, ddpm, dpm_solver, paradigms, srds, block_speculative" in text
    assert "| `sim.max_steps` | int | `500` |" in text


def test_a_changed_declaration_is_caught(monkeypatch, tmp_path: Path) -> None:
    docs = tmp_path / "ros_interface.md"
    docs.write_text(interface_docs.DOCS.read_text())
    assert interface_docs.main(["--check", "--docs", str(docs)]) == 0
    changed = tuple(replace(spec, bounds=(1, 50)) if spec.name == "dts.chunk" else spec
                    for spec in planner_parameters.PLANNER_PARAMS)
    monkeypatch.setattr(planner_parameters, "PLANNER_PARAMS", changed)
    assert interface_docs.main(["--check", "--docs", str(docs)]) == 1
    assert interface_docs.main(["--docs", str(docs)]) == 0
    assert "| `dts.chunk` | int | `6` | in [1, 50] |" in docs.read_text()
