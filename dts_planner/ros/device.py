"""Torch device and dtype from parameter strings for the nodes: clear errors, logged fallback."""

from __future__ import annotations

from contextlib import nullcontext
from typing import ContextManager
import warnings

import torch

from dts_planner.common.device import resolve_device

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def select_device(requested: str, allow_cpu_fallback: bool) -> tuple[torch.device, str]:
    """Return the device to run on and the fallback warning ('' if none) for the node to log.

    Raises ValueError with the reason when the device is malformed or absent (no fallback).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        device = resolve_device(requested, allow_cpu_fallback)
    return device, "; ".join(str(w.message) for w in caught)


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """Return the torch dtype called `name`; ValueError if unknown, or float16 on the CPU."""
    if name not in _DTYPES:
        raise ValueError(f"dtype '{name}' not in {sorted(_DTYPES)}")
    if name == "float16" and device.type == "cpu":
        raise ValueError("dtype float16 needs a CUDA device; use float32 or bfloat16 on the CPU")
    return _DTYPES[name]


def compute_precision(device: torch.device, dtype: torch.dtype) -> ContextManager:
    """Autocast to `dtype` on `device` (weights stay float32); a no-op for float32."""
    if dtype == torch.float32:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def describe_device(device: torch.device) -> str:
    """'cpu' or 'cuda:0 (NVIDIA H100, 79.1 GiB)' for logs and diagnostics."""
    if device.type != "cuda":
        return str(device)
    props = torch.cuda.get_device_properties(device)
    return f"{device} ({props.name}, {props.total_memory / 2**30:.1f} GiB)"


def free_memory(device: torch.device) -> None:
    """Return cached CUDA memory to the driver (no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
