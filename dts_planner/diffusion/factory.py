"""Build samplers by name: ``make_sampler("dts", chunk=10)``; other packages may register more."""

from __future__ import annotations

import importlib
from typing import Any, Callable

from dts_planner.diffusion.ddim import DDIMSampler
from dts_planner.diffusion.ddpm import DDPMSampler
from dts_planner.diffusion.dpm_solver import DPMSolverSampler
from dts_planner.diffusion.dts import DTSSampler
from dts_planner.diffusion.stats import Sampler

SamplerFactory = Callable[..., Sampler]

_SAMPLERS: dict[str, SamplerFactory] = {
    "ddpm": DDPMSampler,
    "ddim": DDIMSampler,
    "dpm_solver": DPMSolverSampler,
    "dts": DTSSampler,
}
# packages imported on the first unknown name, so their samplers can call register_sampler
PLUGIN_PACKAGES: tuple[str, ...] = ("dts_planner.peers",)


def register_sampler(name: str, factory: SamplerFactory) -> None:
    """Make ``make_sampler(name, **params)`` call ``factory(**params)``."""
    _SAMPLERS[name] = factory


def sampler_names() -> list[str]:
    """Names ``make_sampler`` accepts (after loading the plugin packages)."""
    _load_plugins()
    return sorted(_SAMPLERS)


def make_sampler(name: str, **params: Any) -> Sampler:
    """Return the sampler ``name`` built with ``params``; ValueError for an unknown name."""
    if name not in _SAMPLERS:
        _load_plugins()
    if name not in _SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; known: {sorted(_SAMPLERS)}")
    return _SAMPLERS[name](**params)


def _load_plugins() -> None:
    """Import the plugin packages that exist (a missing one is skipped)."""
    for package in PLUGIN_PACKAGES:
        try:
            importlib.import_module(package)
        except ModuleNotFoundError as error:
            if error.name != package:
                raise
