"""Seed lists on the command line: one grammar for every command that takes `--seeds`."""

from __future__ import annotations


def parse_seeds(text: str) -> list[int]:
    """Seeds from "START:STOP" (STOP excluded), "a,b,c", or a single seed "N"."""
    if ":" in text:
        first, _, last = text.partition(":")
        seeds = list(range(int(first or 0), int(last)))
    else:
        seeds = [int(seed) for seed in text.split(",") if seed.strip()]
    if not seeds:
        raise ValueError(f"no seeds in {text!r} (use START:STOP, a,b,c or N)")
    return seeds
