"""Sampler settings: one frozen dataclass per sampler that checks itself against a schedule.

A settings class lists the sampler's parameters as dataclass fields made with :func:`setting`:
a default of type int, float, str or bool (ROS-parameter friendly; 0 stands for "automatic" or
"no limit", never None) and metadata -- ``description`` (with units), inclusive numeric
``bounds`` or string ``choices``. The ROS parameters ``<name>.<field>`` and their docs are
generated from that metadata. ``validate(schedule)`` returns every reason why the settings
cannot sample with that schedule; the contract is that settings that validate do sample (no
exception, no NaN). ``build()`` returns the sampler, ``label`` its ``Sampler.name``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, Field, fields
import math
from typing import Any, ClassVar, Iterable, Mapping

from dts_planner.diffusion.denoiser import SamplerSettingsError
from dts_planner.diffusion.schedule import NoiseSchedule
from dts_planner.diffusion.stats import Sampler

ParamValue = int | float | str | bool
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def setting(default: ParamValue, description: str, *, bounds: tuple[float, float] | None = None,
            choices: Iterable[str] = ()) -> Any:
    """Dataclass field of one sampler parameter: default, description, bounds or choices."""
    return field(default=default, metadata={
        "description": description, "bounds": bounds, "choices": tuple(choices)})


@dataclass(frozen=True)
class SettingInfo:
    """What a generated ROS parameter declaration needs to know about one setting.

    key: ``<sampler>.<name>`` (the ROS parameter name); type: int, float, str or bool;
    bounds: inclusive (low, high) or None; choices: accepted strings (empty: any).
    """

    name: str
    key: str
    type: type
    default: ParamValue
    description: str
    bounds: tuple[float, float] | None
    choices: tuple[str, ...]


def _type_name(kind: type) -> str:
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}[kind]


def _is_type(value: Any, kind: type) -> bool:
    """Return True if ``value`` is usable as ``kind`` (an int counts as a float, a bool never)."""
    if isinstance(value, bool):
        return kind is bool
    if kind is float:
        return isinstance(value, (int, float))
    return isinstance(value, kind)


def divisors(number: int) -> list[int]:
    """Return the positive divisors of ``number``, ascending (for 'allowed values' in reasons)."""
    return [d for d in range(1, number + 1) if number % d == 0]


@dataclass(frozen=True)
class SamplerSettings:
    """Base of the per-sampler settings; subclasses set ``name`` and add :func:`setting` fields.

    Subclasses implement ``build()``, ``label`` and, when the sampler has rules beyond the
    per-field bounds and choices, ``rules(schedule)`` (cross-field and schedule checks). A
    sampler that runs another registered sampler as its target names the parameter that holds
    the target's name in ``target_field`` and implements ``with_target``.
    """

    name: ClassVar[str] = ""
    target_field: ClassVar[str] = ""

    # ------------------------------------------------------------------ description
    @classmethod
    def parameter_fields(cls) -> tuple[Field, ...]:
        """Return the dataclass fields that are sampler parameters (have a description)."""
        return tuple(f for f in fields(cls) if "description" in f.metadata)

    @classmethod
    def parameters(cls) -> tuple[SettingInfo, ...]:
        """Every parameter with key, type, default, description, bounds and choices."""
        return tuple(SettingInfo(f.name, f"{cls.name}.{f.name}", type(f.default), f.default,
                                 f.metadata["description"], f.metadata["bounds"],
                                 f.metadata["choices"]) for f in cls.parameter_fields())

    def to_dict(self) -> dict[str, Any]:
        """Return the parameters as plain data {field: value}."""
        return {f.name: getattr(self, f.name) for f in self.parameter_fields()}

    def to_flat(self) -> dict[str, ParamValue]:
        """Return the parameters as ROS-style flat keys {"<name>.<field>": value}."""
        return {f"{self.name}.{key}": value for key, value in self.to_dict().items()}

    def spec(self, full: bool = False) -> str:
        """Return the spec ``parse_spec`` reads back: ``name[:key=value,...]``.

        Non-default values only; ``full``: every parameter, so the spec keeps its meaning
        whatever the defaults become (calibration files store these).
        """
        items = [f"{f.name}={format_value(getattr(self, f.name))}"
                 for f in self.parameter_fields()
                 if full or getattr(self, f.name) != f.default]
        return self.name + (":" + ",".join(items) if items else "")

    @property
    def label(self) -> str:
        """Short name of the built sampler (its ``Sampler.name``), e.g. "ddim10"."""
        return self.name

    # ------------------------------------------------------------------- validation
    def field_reasons(self) -> list[str]:
        """Reasons from each parameter alone: its type, bounds and choices."""
        reasons = []
        for info in self.parameters():
            value = getattr(self, info.name)
            if not _is_type(value, info.type):
                reasons.append(f"{info.key} must be {_type_name(info.type)}, got {value!r}")
            elif info.choices and value not in info.choices:
                reasons.append(f"{info.key}={value!r} is not one of: {', '.join(info.choices)}")
            elif info.bounds is not None and not info.bounds[0] <= value <= info.bounds[1]:
                low, high = info.bounds
                reasons.append(f"{info.key}={value} is outside [{format_value(low)}, "
                               f"{format_value(high)}]")
        return reasons

    def rules(self, schedule: NoiseSchedule | None) -> list[str]:
        """Cross-field reasons, and with a ``schedule`` the reasons that depend on it."""
        return []

    def check(self) -> list[str]:
        """Every reason that does not depend on the schedule (fields, then cross-field rules)."""
        return self.field_reasons() or self.rules(None)

    def validate(self, schedule: NoiseSchedule) -> list[str]:
        """Every reason why these settings cannot sample with ``schedule``; [] when they can."""
        return self.field_reasons() or self.rules(schedule)

    def require(self, schedule: NoiseSchedule | None = None) -> None:
        """Raise SamplerSettingsError with the reasons (``check`` without a schedule) if any."""
        reasons = self.check() if schedule is None else self.validate(schedule)
        if reasons:
            raise SamplerSettingsError(f"invalid {self.name} settings: " + "; ".join(reasons))

    def build(self) -> Sampler:
        """Return the sampler with these settings (check them first: see ``require``)."""
        raise NotImplementedError

    def with_target(self, target: SamplerSettings) -> SamplerSettings:
        """Copy with the settings of the target sampler (only with a ``target_field``)."""
        raise TypeError(f"the {self.name} sampler runs no target sampler")


def checked(settings: SamplerSettings) -> SamplerSettings:
    """Return ``settings`` after ``require()`` (the schedule-free checks of a constructor)."""
    settings.require()
    return settings


def format_value(value: ParamValue) -> str:
    """Spec text of a value: repr for floats (round-trips exactly), true/false for bools."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    return str(value)


def parse_value(text: str, kind: type, key: str) -> ParamValue:
    """Parse spec text ``text`` as ``kind``; ValueError naming ``key`` if it is not one."""
    text = text.strip()
    try:
        if kind is bool:
            if text.lower() in _TRUE + _FALSE:
                return text.lower() in _TRUE
            raise ValueError(text)
        return kind(text)
    except ValueError:
        raise ValueError(f"{key} must be {_type_name(kind)}, got {text!r}") from None


def coerce_value(value: Any, kind: type, key: str) -> ParamValue:
    """Take ``value`` (a parameter or spec text) as ``kind``; ValueError if it cannot be one."""
    if isinstance(value, str) and kind is not str:
        return parse_value(value, kind, key)
    if not _is_type(value, kind):
        raise ValueError(f"{key} must be {_type_name(kind)}, got {value!r}")
    return float(value) if kind is float else value


def settings_with(cls: type[SamplerSettings], values: Mapping[str, Any]) -> SamplerSettings:
    """Build ``cls`` settings from {field: value}; ValueError for unknown fields, bad types."""
    known = {f.name: type(f.default) for f in cls.parameter_fields()}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"unknown {cls.name} setting(s) {', '.join(unknown)}; known: "
                         f"{', '.join(known)}")
    return cls(**{key: coerce_value(value, known[key], f"{cls.name}.{key}")
                  for key, value in values.items()})
