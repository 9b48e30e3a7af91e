"""Sampler registry and settings: every parameter at and past its bounds, the spec grammar.

Parametrised over the registry, so a newly registered sampler is covered automatically: each
value either validates and then samples a finite plan on a real tiny video model with AVDC's
T = 100 schedule, or is refused with a reason that names the parameter.
"""

from __future__ import annotations

from dataclasses import replace
import math
from pathlib import Path

import pytest
import torch
import yaml

import dts_planner.peers  # noqa: F401  (registers the peer samplers)
from dts_planner.diffusion import (DDIMSettings, DPMSolverSampler, DPMSolverSettings,
                                   DTSSettings, make_sampler, NoiseSchedule,
                                   NonFiniteOutputError, parse_spec, predict, sampler_names,
                                   SamplerSettingsError, SamplerStateError, settings_class,
                                   settings_from_flat)
from dts_planner.peers import ParadigmsSettings

AVDC = NoiseSchedule.avdc()
CONFIG = Path(__file__).resolve().parents[1] / "config" / "planner.yaml"


def boundary_values(info) -> list:
    """Values at each bound and one past it (numbers), every choice and one more (strings)."""
    if info.type is bool:
        return [True, False, 1]
    if info.choices:
        return [*info.choices, "bogus"]
    low, high = info.bounds
    if info.type is int:
        return [low, low - 1, high, high + 1]
    return [low, math.nextafter(low, -math.inf), high, math.nextafter(high, math.inf),
            math.nan]


def past_bounds(info, value) -> bool:
    """Return True for a value no setting may accept (wrong type, past a bound, no choice)."""
    if info.type is bool:
        return not isinstance(value, bool)
    if info.choices:
        return value not in info.choices
    return not info.bounds[0] <= value <= info.bounds[1]


CASES = [(name, info, value) for name in sampler_names()
         for info in settings_class(name).parameters() for value in boundary_values(info)]


@pytest.fixture(scope="module")
def plans():
    """Cache of sampled plans per settings (identical settings are sampled once)."""
    return {}


@pytest.mark.parametrize("name, info, value", CASES,
                         ids=[f"{info.key}={value!r}" for _, info, value in CASES])
def test_each_setting_at_and_past_its_bounds_plans_or_names_the_parameter(
        name, info, value, tiny_problem, plans):
    settings = replace(settings_class(name)(), **{info.name: value})
    reasons = settings.validate(AVDC)
    if past_bounds(info, value):
        assert reasons, f"{info.key}={value!r} is past its bounds but validates"
    if reasons:
        assert any(info.key in reason for reason in reasons), reasons
        with pytest.raises(ValueError, match=info.key.replace(".", r"\.")):
            settings.require(AVDC)
        return
    if settings not in plans:
        noise, cond = tiny_problem.noise[:1], {k: v[:1] for k, v in tiny_problem.cond.items()}
        plans[settings] = settings.build().sample(tiny_problem.model, noise, cond,
                                                  torch.Generator().manual_seed(0)).sample
    assert torch.isfinite(plans[settings]).all()


@pytest.mark.parametrize("settings, key", [
    (DDIMSettings(500), "ddim.num_steps"), (DPMSolverSettings(500), "dpm_solver.num_steps"),
    (DPMSolverSettings(100), "dpm_solver.num_steps"),
    (ParadigmsSettings(30), "paradigms.num_steps"),
    (DTSSettings(draft_stride=3, target_stride=1), "dts.draft_stride"),
    (DTSSettings(draft_stride=9, target_stride=1), "dts.draft_stride"),
    (DTSSettings(draft_stride=7, target_stride=1), "dts.draft_stride"),
    (DTSSettings(max_rounds=9), "dts.max_rounds")])
def test_settings_that_used_to_fail_every_plan_are_refused_up_front(settings, key):
    # issue 13: each was accepted and then failed every plan (dpm_solver 500 as a "model NaN")
    reasons = settings.validate(AVDC)
    assert len(reasons) == 1 and reasons[0].startswith(key) and "allowed" in reasons[0] or \
        "at least" in reasons[0] or "at most" in reasons[0], reasons
    with pytest.raises(SamplerSettingsError, match=key):
        settings.build().sample(_ConstantDenoiser(), torch.zeros(1, 3, 2, 2), None)


class _ConstantDenoiser:
    """Predicts v = 0 under AVDC's schedule (enough to reach the settings check)."""

    prediction_type = "v_prediction"
    schedule = AVDC

    def __call__(self, x_t, t, cond):
        """Return zeros shaped like ``x_t``."""
        return torch.zeros_like(x_t)


def test_a_scheduler_fault_is_a_sampler_state_error_not_a_model_nan():
    sampler = DPMSolverSampler(100)     # past the check: diffusers repeats a timestep -> NaN
    sampler.settings = DPMSolverSettings(99)
    with pytest.raises(SamplerStateError, match="not the model"):
        sampler.sample(_ConstantDenoiser(), torch.ones(1, 3, 2, 2), None)
    with pytest.raises(NonFiniteOutputError, match="model output"):
        predict(lambda x, t, c: x * math.nan, torch.ones(1, 2), torch.tensor([3]), None, "s")
    assert not issubclass(SamplerStateError, NonFiniteOutputError)


@pytest.mark.parametrize("name", sampler_names())
def test_spec_and_flat_forms_round_trip(name):
    cls = settings_class(name)
    default = cls()
    variants = [replace(default, **{info.name: _other_value(info)}) for info in cls.parameters()]
    checked = [default] + [settings for settings in variants if not settings.check()]
    assert len(checked) >= len(variants)            # at most one variant fails its own rules
    for settings in checked:
        assert parse_spec(settings.spec()) == settings, settings.spec()
        full = settings.spec(full=True)
        keys = {item.split("=")[0] for item in full.partition(":")[2].split(",")}
        assert parse_spec(full) == settings and {i.name for i in cls.parameters()} <= keys, full
        assert settings_from_flat(name, {**settings.to_flat(), "other.key": 1}) == settings
        assert settings.build().name == settings.label
    assert default.spec() == name and parse_spec(f" {name} ") == default


def _other_value(info):
    """Return a valid value different from the default."""
    if info.type is bool:
        return not info.default
    if info.choices:
        return next(choice for choice in info.choices if choice != info.default)
    return info.bounds[0] if info.default != info.bounds[0] else info.bounds[1]


def test_block_speculative_takes_its_target_settings_in_every_form():
    settings = parse_spec("block_speculative:tau=20,target=ddim,ddim.num_steps=4")
    assert settings.target_settings == DDIMSettings(4) and settings.spec() == \
        "block_speculative:tau=20.0,target=ddim,ddim.num_steps=4"
    flat = {"block_speculative.target": "ddim", "ddim.num_steps": 7, "dts.chunk": 3}
    assert settings_from_flat("block_speculative", flat).target_settings == DDIMSettings(7)
    assert make_sampler("block_speculative", target="ddim", num_steps=4).target.num_steps == 4
    bad = settings_from_flat("block_speculative", {"dts.draft_stride": 3, "dts.target_stride": 1})
    assert bad.validate(AVDC) == [bad.target_settings.validate(AVDC)[0]]
    assert "dts.draft_stride=3" in bad.validate(AVDC)[0]


@pytest.mark.parametrize("spec, message", [
    ("euler", "unknown sampler 'euler'"), ("dts:chunks=3", "unknown dts setting 'chunks'"),
    ("dts:chunk=abc", "dts.chunk must be an integer"), ("dts:chunk", "expected key=value"),
    ("dts:chunk=0", r"dts.chunk=0 is outside \[1, 100\]"), ("dts:chunk=2,chunk=3", "twice"),
    ("ddpm:clip_x0=maybe", "true or false"), ("dts:distance=cosine", "one of: l2, rms"),
    ("dts:target_stride=3", "must divide dts.draft_stride=10"),
    ("block_speculative:ddim.num_steps=3", "target sampler 'dts'")])
def test_bad_specs_raise_with_the_reason(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_spec(spec)


def test_make_sampler_is_a_thin_wrapper_with_none_as_automatic():
    assert make_sampler("ddim", num_steps=10).name == "ddim10"
    assert make_sampler("dts", max_rounds=None, chunk=10).chunk == 10
    assert make_sampler("srds", num_steps=25, num_segments=None).num_segments == 5
    with pytest.raises(ValueError, match="unknown ddim setting"):
        make_sampler("ddim", num_steps=10, chunk=3)
    with pytest.raises(ValueError, match="unknown sampler"):
        make_sampler("euler")


def test_defaults_and_keys_are_the_ros_parameters_in_config_planner_yaml():
    params = yaml.safe_load(CONFIG.read_text())["/**"]["ros__parameters"]
    assert set(sampler_names()) <= {"dts", "ddim", "ddpm", "dpm_solver", "paradigms", "srds",
                                    "block_speculative"}
    for name in sampler_names():
        expected = {info.name: info.default for info in settings_class(name).parameters()}
        assert params[name] == expected, name
