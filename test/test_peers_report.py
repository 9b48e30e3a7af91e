"""The speed-fidelity report runs end to end on a tiny configuration."""

from pathlib import Path

from dts_planner.bench.__main__ import main
from dts_planner.bench.report import parse_args


def test_tiny_report_writes_markdown_plots_and_the_eval_table(tmp_path):
    csv_path = tmp_path / "eval.csv"
    csv_path.write_text("task,sampler,success\ndoor-open,dts,0.8\n")
    out = tmp_path / "docs" / "benchmarks.md"
    assert main(["report", "--tiny", "--threads", "1", "--out", str(out),
                 "--eval-csv", str(csv_path)]) == 0
    text = out.read_text()
    for needle in ("## Equal-fidelity comparison", "| DTS | shipped |", "| ParaDiGMS |",
                   "| SRDS |", "## Block speculative planning", "| SDVG |",
                   "| door-open | dts | 0.8 |", "commit", "load average"):
        assert needle in text, needle
    for name in ("frontier_wallclock", "frontier_depth", "block_speculative"):
        assert (out.parent / "img" / f"{name}.png").stat().st_size > 10_000
    assert "no GPU lent" not in text and "CUDA GPUs:" in text


def test_report_writes_under_the_current_directory_by_default():
    assert parse_args([]).out == Path("docs/benchmarks.md")       # never beside the installed file
