"""The data format and the training commands load no simulator (MuJoCo, Meta-World)."""

import subprocess
import sys

SCRIPT = """
import sys
import dts_planner.data, dts_planner.data.shards, dts_planner.data.datasets
import dts_planner.training.train_video, dts_planner.training.train_policy
import dts_planner.sim
heavy = sorted(m for m in ("mujoco", "metaworld", "gymnasium") if m in sys.modules)
assert not heavy, f"loaded {heavy}"
print("light")
"""


def test_training_and_data_import_no_simulator():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0 and "light" in result.stdout, result.stderr[-2000:]
