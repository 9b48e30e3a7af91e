"""Import-time facts only a fresh interpreter shows (the test process has loaded everything).

One interpreter (a process start costs seconds) answers four questions, in an order that keeps
each answer honest: the action predictor node with the flow predictors first (nothing else is
loaded yet), then with its default predictor, then the light packages, then the sampler choice
(the peers not loaded yet).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SCRIPT = """
import json, sys
import dts_planner.ros.action_predictor_node
from dts_planner.predictors import DEFAULT_KIND, make_predictor
make_predictor("optical_flow"), make_predictor("optical_flow", "navigation")
facts = {"flow_loaded_torch": "torch" in sys.modules}
make_predictor(DEFAULT_KIND)
facts["predictor_loaded"] = sorted(m for m in ("diffusers", "dts_planner.models.unet")
                                   if m in sys.modules)
make_predictor("diffusion_policy")
facts["sampling_predictor_loaded_diffusers"] = "diffusers" in sys.modules
import dts_planner.data, dts_planner.data.shards, dts_planner.data.datasets
import dts_planner.training.train_video, dts_planner.training.train_policy
import dts_planner.sim
facts["simulator"] = sorted(m for m in ("mujoco", "metaworld", "gymnasium") if m in sys.modules)
facts["peers_before_choice"] = "dts_planner.peers" in sys.modules
import dts_planner.planning.sampler_choice
from dts_planner.diffusion import parse_spec
facts["srds"] = parse_spec("srds:num_steps=25,max_iterations=1").name
print(json.dumps(facts))
"""


@pytest.mark.long_running
def test_light_imports_and_a_calibrated_peer_configuration_in_a_fresh_process() -> None:
    """Flow predictors load no torch, the default no diffusers, data no simulator, SRDS no more."""
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    facts = json.loads(result.stdout.strip().splitlines()[-1])
    # a robot that runs optical flow gets a predictor process without torch (1 s, 180 MB)
    assert not facts["flow_loaded_torch"], "the node or a flow predictor loaded torch"
    # diffusers loads torch._dynamo (about 1 s): the goal servo reads the policy's goal-state
    # head and never samples, so neither the node nor its default predictor needs it
    assert facts["predictor_loaded"] == [], f"the predictor loaded {facts['predictor_loaded']}"
    # a predictor that samples builds its scheduler when it is made, not in its first plan
    assert facts["sampling_predictor_loaded_diffusers"]
    assert facts["simulator"] == [], f"data/training loaded {facts['simulator']}"
    assert not facts["peers_before_choice"], "the light imports loaded the peers: reorder SCRIPT"
    assert facts["srds"] == "srds"
