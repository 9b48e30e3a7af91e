"""Parameter specs against config/planner.yaml, value checks, descriptors, QoS strings."""

from __future__ import annotations

from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, ReliabilityPolicy
import pytest

from dts_planner.diffusion import make_sampler
from dts_planner.ros import parameters
from dts_planner.ros.parameters import (
    BRIDGE_PARAMS, check_values, load_defaults, PLANNER_PARAMS, PREDICTOR_PARAMS,
    sampler_kwargs)
from dts_planner.ros.qos import latched_qos, make_qos

ALL_SPECS = {spec.name: spec for spec in PLANNER_PARAMS + PREDICTOR_PARAMS + BRIDGE_PARAMS}


def test_yaml_is_the_single_source_of_defaults() -> None:
    """Every declared parameter has a default in the YAML and the YAML has nothing else."""
    assert set(load_defaults()) == set(ALL_SPECS)


@pytest.mark.parametrize("name", sorted(ALL_SPECS))
def test_defaults_pass_their_own_checks(name: str) -> None:
    """Each default is accepted and yields a descriptor of its type, with ranges/read-only."""
    spec, default = ALL_SPECS[name], load_defaults()[name]
    assert spec.check(default) is None
    desc = spec.descriptor(default)
    assert desc.type == Parameter.Type.from_parameter_value(default).value
    assert desc.description and desc.read_only == (not spec.runtime)
    if spec.bounds is not None:
        assert desc.integer_range or desc.floating_point_range


def test_every_default_sampler_builds() -> None:
    """The YAML's settings build every sampler the planner offers."""
    defaults = load_defaults()
    for name in parameters.SAMPLERS:
        assert make_sampler(name, **sampler_kwargs({**defaults, "sampler": name})).name


def test_check_values_gives_reasons() -> None:
    """Bad choices and out-of-range numbers are rejected with a reason naming the parameter."""
    reasons = check_values(PLANNER_PARAMS, {
        "sampler": "euler", "max_image_age_s": -1.0, "dts.chunk": 3, "unknown": 1})
    assert len(reasons) == 2
    assert "sampler='euler'" in reasons[0] and "dts" in reasons[0]
    assert "max_image_age_s=-1.0" in reasons[1]
    assert parameters.result(reasons).successful is False
    assert parameters.result([]).successful is True


def test_sampler_kwargs_select_the_sampler_section() -> None:
    """Only `<sampler>.*` values become keyword arguments; max_rounds 0 means no limit."""
    values = {"sampler": "dts", "dts.chunk": 4, "dts.max_rounds": 0, "ddim.num_steps": 3}
    assert sampler_kwargs(values) == {"chunk": 4, "max_rounds": None}
    assert sampler_kwargs({**values, "sampler": "ddim"}) == {"num_steps": 3}


def test_block_speculative_gets_its_target_sampler_parameters() -> None:
    """The block sampler's target is built from the target's own section; 0 = automatic."""
    values = {**load_defaults(), "sampler": "block_speculative",
              "block_speculative.target": "ddim", "ddim.num_steps": 5, "srds.num_segments": 0}
    kwargs = sampler_kwargs(values)
    assert kwargs["target"] == "ddim" and kwargs["num_steps"] == 5 and "chunk" not in kwargs
    assert make_sampler("block_speculative", **kwargs).target.num_steps == 5
    assert sampler_kwargs({**values, "sampler": "srds"})["num_segments"] is None


def test_qos_from_strings() -> None:
    """Map QoS strings to policies; bad ones raise with the accepted values."""
    qos = make_qos("best_effort", 1)
    assert qos.reliability == ReliabilityPolicy.BEST_EFFORT and qos.depth == 1
    latched = latched_qos()
    assert latched.reliability == ReliabilityPolicy.RELIABLE
    assert latched.durability == DurabilityPolicy.TRANSIENT_LOCAL
    with pytest.raises(ValueError, match="best_effort"):
        make_qos("sometimes", 1)
    with pytest.raises(ValueError):
        make_qos("reliable", 0)
