"""`dts-demo` end to end: three nodes in one process, one params file, an episode, a GIF."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from dts_planner.models import DEFAULT_CONFIG
from dts_planner.ros.demo import main


def test_demo_runs_an_episode_and_writes_the_plan_gif(
        ros_domain_id, tmp_path: Path, capsys) -> None:
    code = main(["--model-preset", "default", "--sampler", "ddim", "--episodes", "1",
                 "--max-steps", "8", "--rate", "200", "--device", "cpu",
                 "--output", str(tmp_path), "--timeout", "240"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "episode 0 (seed 0):" in out and "plans 1" in out and "NFE 10" in out
    assert "0/1 successful" in out or "1/1 successful" in out
    gif = Image.open(tmp_path / "plan.gif")
    height, width = DEFAULT_CONFIG.image_size
    assert gif.n_frames == 8 and gif.size == (4 * width, 4 * height)   # source + 7 frames, 4x
    assert (tmp_path / "plan.png").is_file()


def test_demo_without_a_model_fails_clearly(ros_domain_id, tmp_path: Path, capsys) -> None:
    code = main(["--model-path", str(tmp_path / "missing.pt"), "--device", "cpu",
                 "--output", str(tmp_path)])
    assert code == 1
    assert "--model-path" in capsys.readouterr().err
