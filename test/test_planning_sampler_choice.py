"""SamplerChoice resolves every configuration a calibration can name."""

from __future__ import annotations

import subprocess
import sys


def test_a_calibrated_peer_configuration_resolves_in_a_fresh_process():
    """A budget pick can be SRDS; the evaluation's direct driver imports no peers of its own."""
    code = ("import dts_planner.planning.sampler_choice\n"
            "from dts_planner.diffusion import parse_spec\n"
            "print(parse_spec('srds:num_steps=25,max_iterations=1').name)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "srds"
