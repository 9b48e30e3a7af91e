"""The shared optimisation loop: when it saves, and the loss log it appends to."""

from __future__ import annotations

import csv

import pytest
import torch

from dts_planner.training.loop import LOSS_CSV, make_ema, run_steps


def run(tmp_path, batches: int, save_every: int, step: int = 0) -> list[int]:
    """Run a linear model over `batches` batches from `step`; return the steps it saved at."""
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    saved: list[int] = []
    run_steps([{"x": torch.ones(4, 2)}] * batches,
              lambda batch, generator: model(batch["x"]).square().mean(), model, optimizer,
              make_ema(model.parameters(), 0.9), lambda step, elapsed: saved.append(step),
              out=tmp_path, step=step, elapsed=0.0, total_steps=step + batches, base_lr=0.1,
              warmup=1, seed=0, max_minutes=10.0, save_every=save_every, desc="test")
    return saved


@pytest.mark.parametrize("batches, save_every, step, saves", [
    (3, 1, 0, [1, 2, 3]),     # the last step was just saved: not again at the end
    (3, 2, 0, [2, 3]),
    (2, 5, 4, [5, 6]),        # a resumed run counts steps from where it was
    (0, 2, 4, [4]),           # nothing to do: the end still saves (a fresh run's checkpoint)
])
def test_saves_every_save_every_steps_and_once_at_the_end(
        tmp_path, batches, save_every, step, saves) -> None:
    assert run(tmp_path, batches, save_every, step) == saves
    with open(tmp_path / LOSS_CSV) as handle:
        assert [int(row["step"]) for row in csv.DictReader(handle)] == list(
            range(step + 1, step + batches + 1))
