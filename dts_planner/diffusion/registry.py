"""The sampler registry: names -> settings classes, one spec grammar, flat (ROS) parameters.

The core registers ddpm, ddim, dpm_solver and dts here; ``import dts_planner.peers`` registers
paradigms, srds and block_speculative (whoever offers the peers imports that package).

Spec grammar (CLIs, benches, configs): ``name`` or ``name:key=value,key=value``, e.g.
``dts:chunk=10,threshold=0.02`` or ``ddim:num_steps=20``. A sampler that runs a target sampler
(block_speculative) takes the target's settings as ``<target>.<key>=value``, e.g.
``block_speculative:target=ddim,ddim.num_steps=20``. Flat form (ROS parameters):
``{"dts.chunk": 6, "ddim.num_steps": 10, ...}``.
"""

from __future__ import annotations

from typing import Any, Mapping

from dts_planner.diffusion.ddim import DDIMSettings
from dts_planner.diffusion.ddpm import DDPMSettings
from dts_planner.diffusion.dpm_solver import DPMSolverSettings
from dts_planner.diffusion.dts import DTSSettings
from dts_planner.diffusion.settings import parse_value, SamplerSettings, settings_with
from dts_planner.diffusion.stats import Sampler

_REGISTRY: dict[str, type[SamplerSettings]] = {}


def register_sampler(cls: type[SamplerSettings]) -> type[SamplerSettings]:
    """Register a settings class under its ``name`` (usable as a class decorator)."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no sampler name")
    _REGISTRY[cls.name] = cls
    return cls


def sampler_names() -> list[str]:
    """Return the registered sampler names in registration order (core first, then peers)."""
    return list(_REGISTRY)


def settings_class(name: str) -> type[SamplerSettings]:
    """Return the settings class of sampler ``name``; ValueError for an unknown name."""
    try:
        return _REGISTRY[name]
    except KeyError:
        hint = "" if "paradigms" in _REGISTRY else " (import dts_planner.peers for the peers)"
        raise ValueError(f"unknown sampler {name!r}; known: {', '.join(_REGISTRY)}{hint}") \
            from None


def _assemble(cls: type[SamplerSettings], own: Mapping[str, Any],
              target: Mapping[str, Any] | None) -> SamplerSettings:
    """Build ``cls`` settings from its own values and (if it runs a target) the target's."""
    if not cls.target_field:
        if target:
            raise ValueError(f"unknown {cls.name} setting(s) {', '.join(sorted(target))}")
        return settings_with(cls, own)
    settings = settings_with(cls, own)
    target_cls = settings_class(getattr(settings, cls.target_field))
    return settings.with_target(settings_with(target_cls, target or {}))


def parse_spec(spec: str) -> SamplerSettings:
    """Parse settings from ``name[:key=value,...]`` (module docstring); ValueError with the reason.

    Unknown samplers or keys, values of the wrong type and values outside a parameter's bounds
    or choices are refused here; rules that need the model's schedule (T) are checked by
    ``settings.validate(schedule)`` (and again when sampling).
    """
    name, _, body = spec.strip().partition(":")
    cls = settings_class(name.strip())
    known = {f.name: type(f.default) for f in cls.parameter_fields()}
    own: dict[str, Any] = {}
    target: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in body.split(","))):
        key, equals, text = item.partition("=")
        key = key.strip()
        if not equals:
            raise ValueError(f"{spec!r}: expected key=value, got {item!r}")
        if key in own or key in target:
            raise ValueError(f"{spec!r}: {key} is given twice")
        if key in known:
            own[key] = parse_value(text, known[key], f"{cls.name}.{key}")
        elif cls.target_field and "." in key:
            target[key] = text.strip()
        else:
            raise ValueError(f"{spec!r}: unknown {cls.name} setting {key!r}; known: "
                             f"{', '.join(known)}")
    if target:
        target_name = own.get(cls.target_field) or getattr(cls(), cls.target_field)
        wrong = [key for key in target if key.partition(".")[0] != target_name]
        if wrong:
            raise ValueError(f"{spec!r}: {', '.join(wrong)} do not belong to the target "
                             f"sampler {target_name!r} (write {target_name}.<key>=value)")
        target = {key.partition(".")[2]: value for key, value in target.items()}
    settings = _assemble(cls, own, target)
    reasons = settings.check()
    if reasons:
        raise ValueError(f"{spec!r}: " + "; ".join(reasons))
    return settings


def settings_from_flat(name: str, flat: Mapping[str, Any]) -> SamplerSettings:
    """Build ``name`` settings from flat ``{"<name>.<field>": value}`` (other keys ignored).

    Missing fields keep their defaults; a target-running sampler (block_speculative) takes its
    target's settings from the same mapping. Unknown ``<name>.*`` keys and values of the wrong
    type raise ValueError; bounds, choices and schedule rules are left to ``validate``.
    """
    cls = settings_class(name)
    prefix = f"{name}."
    own = {key[len(prefix):]: value for key, value in flat.items() if key.startswith(prefix)}
    if not cls.target_field:
        return settings_with(cls, own)
    settings = settings_with(cls, own)
    return settings.with_target(settings_from_flat(getattr(settings, cls.target_field), flat))


def make_sampler(name: str, **params: Any) -> Sampler:
    """Build sampler ``name`` from keyword settings; ValueError with the reasons if invalid.

    A thin wrapper over the settings class: None stands for 0 ("automatic"/"no limit"), and a
    target-running sampler passes the keys that are not its own to its target. Rules that need
    the schedule are checked when sampling.
    """
    cls = settings_class(name)
    params = {key: 0 if value is None else value for key, value in params.items()}
    known = {f.name for f in cls.parameter_fields()}
    own = {key: value for key, value in params.items() if key in known}
    rest = {key: value for key, value in params.items() if key not in known}
    settings = _assemble(cls, own, rest)
    settings.require()
    return settings.build()


for _cls in (DTSSettings, DDIMSettings, DDPMSettings, DPMSolverSettings):
    register_sampler(_cls)
