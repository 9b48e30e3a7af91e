"""`dts-demo` end to end: the nodes in one process, one params file, an episode, a GIF, JSON."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from dts_planner.models import DEFAULT_CONFIG
from dts_planner.ros.demo import main


def test_demo_runs_an_episode_and_writes_the_plan_gif(
        ros_domain_id, tmp_path: Path, capsys) -> None:
    report = tmp_path / "demo.json"
    code = main(["--model-preset", "default", "--sampler", "ddim:num_steps=3", "--episodes",
                 "1", "--max-steps", "8", "--rate", "200", "--device", "cpu",
                 "--output", str(tmp_path), "--timeout", "240", "--json", str(report)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "episode seed 0: failure in 8 steps; plans 1" in out and "NFE 3" in out
    assert "0/1 successful" in out            # a random-weight model cannot close the drawer
    assert "the same sampler alone" in out and "ratio" in out
    data = json.loads(report.read_text())
    (episode,) = data["episodes"]
    assert episode == {**episode, "seed": 0, "success": False, "steps": 8}
    assert [p["nfe"] for p in episode["plans"]] == [3] and episode["plans"][0]["status"] == 0
    assert data["sampling"]["in_graph"]["median_s"] > 0
    assert len(data["sampling"]["standalone_times_s"]) == 1      # each plan replayed alone
    gif = Image.open(tmp_path / "plan.gif")
    height, width = DEFAULT_CONFIG.image_size
    assert gif.n_frames == 8 and gif.size == (4 * width, 4 * height)   # source + 7 frames, 4x
    assert (tmp_path / "plan.png").is_file()


def test_demo_without_a_model_fails_clearly(ros_domain_id, tmp_path: Path, capsys) -> None:
    code = main(["--model-path", str(tmp_path / "missing.pt"), "--device", "cpu",
                 "--output", str(tmp_path)])
    assert code == 1
    assert "--model-path" in capsys.readouterr().err
