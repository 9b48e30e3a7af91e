"""Import-time facts only a fresh interpreter shows (the test process has loaded everything).

One interpreter answers every question, in an order that keeps each answer honest: the light
packages first (nothing else is loaded yet), then the sampler choice (the peers not yet loaded).
Its tests share the `xdist_group`, so one worker starts it once.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SCRIPT = """
import json, sys
import dts_planner.data, dts_planner.data.shards, dts_planner.data.datasets
import dts_planner.training.train_video, dts_planner.training.train_policy
import dts_planner.sim
facts = {"simulator": sorted(m for m in ("mujoco", "metaworld", "gymnasium") if m in sys.modules),
         "peers_before_choice": "dts_planner.peers" in sys.modules}
import dts_planner.planning.sampler_choice
from dts_planner.diffusion import parse_spec
facts["srds"] = parse_spec("srds:num_steps=25,max_iterations=1").name
print(json.dumps(facts))
"""

pytestmark = pytest.mark.xdist_group("fresh_process")


@pytest.fixture(scope="module")
def facts() -> dict:
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_training_and_data_import_no_simulator(facts) -> None:
    """The data format and the training commands load no MuJoCo or Meta-World."""
    assert facts["simulator"] == [], f"loaded {facts['simulator']}"


def test_a_calibrated_peer_configuration_resolves_in_a_fresh_process(facts) -> None:
    """A budget pick can be SRDS; the evaluation's direct driver imports no peers of its own."""
    assert not facts["peers_before_choice"], "the light imports loaded the peers: reorder SCRIPT"
    assert facts["srds"] == "srds"
