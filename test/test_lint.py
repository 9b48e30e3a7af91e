"""Lint: flake8 with pep257 docstrings (flake8-docstrings), configured in setup.cfg."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PATHS = ["dts_planner", "launch", "test", "scripts", "setup.py"]


@pytest.mark.timeout(300)
def test_flake8() -> None:
    paths = [p for p in PATHS if (REPO / p).exists()]
    proc = subprocess.run([sys.executable, "-m", "flake8", *paths], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 0, f"flake8 found problems:\n{proc.stdout}{proc.stderr}"
