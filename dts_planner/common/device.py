"""Torch device selection with a clear error when a GPU is asked for but absent."""

from __future__ import annotations

import warnings

import torch


def resolve_device(device: str | torch.device, allow_cpu_fallback: bool = False) -> torch.device:
    """Return ``device`` if usable; a missing CUDA device raises (or falls back to CPU if allowed).

    Raises ``ValueError`` for a malformed name or an unavailable CUDA device.
    """
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"invalid torch device {device!r}: {error}") from None
    if resolved.type != "cuda":
        return resolved
    count = torch.cuda.device_count()
    if (resolved.index or 0) < count:
        return resolved
    problem = (f"device {str(resolved)!r} was requested but this machine has {count} usable CUDA "
               f"device(s) (torch {torch.__version__}, CUDA build: {torch.version.cuda or 'no'})")
    if allow_cpu_fallback:
        warnings.warn(f"{problem}; falling back to CPU", RuntimeWarning, stacklevel=2)
        return torch.device("cpu")
    raise ValueError(f"{problem}. Use device='cpu' or allow CPU fallback.")
