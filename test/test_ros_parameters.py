"""Parameter specs against config/planner.yaml, value checks, descriptors, QoS strings."""

from __future__ import annotations

from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, ReliabilityPolicy
import pytest

from dts_planner.diffusion import NoiseSchedule, sampler_names, settings_class
from dts_planner.ros import parameters, planner_parameters
from dts_planner.ros.parameters import check_values, load_defaults
from dts_planner.ros.planner_parameters import PLANNER_PARAMS, sampler_reasons, sampler_settings
from dts_planner.ros.launch_arguments import ARGUMENTS, parameter_overrides
from dts_planner.ros.qos import latched_qos, make_qos

#: Every parameter of the package's nodes by name (the shared params file holds them all).
ALL_SPECS = {spec.name: spec for specs in (
    PLANNER_PARAMS, parameters.PREDICTOR_PARAMS, parameters.BRIDGE_PARAMS) for spec in specs}


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
    """The YAML's settings validate and build every sampler the planner offers."""
    defaults = load_defaults()
    assert planner_parameters.SAMPLERS == tuple(sampler_names())
    assert not sampler_reasons(defaults, NoiseSchedule.avdc())
    for name in planner_parameters.SAMPLERS:
        assert sampler_settings(defaults, name).build().name


def test_sampler_parameters_come_from_the_registry() -> None:
    """Every setting of every registered sampler is a runtime planner parameter, with bounds."""
    declared = {spec.name: spec for spec in PLANNER_PARAMS}
    for name in sampler_names():
        for info in settings_class(name).parameters():
            spec = declared[info.key]
            assert spec.runtime and spec.bounds == info.bounds and spec.choices == info.choices
    sampler = declared["sampler"]
    assert sampler.choices == tuple(sampler_names())
    assert "one of: dts" in sampler.descriptor("dts").additional_constraints


def test_check_values_gives_reasons() -> None:
    """Bad choices and out-of-range numbers are rejected with a reason naming the parameter."""
    reasons = check_values(PLANNER_PARAMS, {
        "sampler": "euler", "max_image_age_s": -1.0, "dts.chunk": 3, "unknown": 1,
        "dts.threshold": float("nan")})
    assert len(reasons) == 3
    assert "sampler='euler'" in reasons[0] and "dts" in reasons[0]
    assert "max_image_age_s=-1.0" in reasons[1] and "[0.05, 3600]" in reasons[1]
    assert "dts.threshold=nan" in reasons[2] and "[-1, 1e+09]" in reasons[2]
    assert parameters.result(reasons).successful is False
    assert parameters.result([]).successful is True


def test_settings_of_every_sampler_are_checked_against_the_schedule() -> None:
    """A setting of a sampler not in use is checked too, with the reason and allowed values."""
    values = {**load_defaults(), "sampler": "ddim", "dts.target_stride": 3}
    reasons = sampler_reasons(values, NoiseSchedule.avdc())
    assert reasons == ["dts.target_stride=3 must divide dts.draft_stride=10: allowed 1, 2, 5, "
                       "10"]
    for key, value in (("ddim.num_steps", 500), ("paradigms.num_steps", 30),
                       ("dpm_solver.num_steps", 500), ("dts.draft_stride", 9)):
        assert any(key in reason for reason in sampler_reasons(
            {**load_defaults(), key: value}, NoiseSchedule.avdc())), key


def test_block_speculative_gets_its_target_sampler_parameters() -> None:
    """The block sampler's target is built from the target's own section."""
    values = {**load_defaults(), "sampler": "block_speculative",
              "block_speculative.target": "ddim", "ddim.num_steps": 5}
    settings = sampler_settings(values)
    assert settings.target_settings.num_steps == 5
    assert settings.build().target.num_steps == 5


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


def test_launch_arguments_map_to_parameters() -> None:
    """Empty arguments keep the params file's values; given ones override it."""
    defaults = {name: default for name, default, _, _ in ARGUMENTS}
    assert parameter_overrides(defaults) == {"use_sim_time": False}
    given = {**defaults, "device": "cuda:1", "allow_cpu_fallback": "true", "sim": "true",
             "model_path": "/m.pt", "action_predictor": "diffusion_policy",
             "autostart": "false", "use_sim_time": "true"}
    assert parameter_overrides(given) == {
        "use_sim_time": True, "device": "cuda:1", "allow_cpu_fallback": True,
        "model_path": "/m.pt", "predictor.type": "diffusion_policy", "autostart": False,
        "predictor.episode_source": "simulator"}
    overridden = set(parameter_overrides(given)) - {"use_sim_time"}
    assert overridden <= set(ALL_SPECS)            # every override is a declared parameter
    choices = {name: options for name, _, _, options in ARGUMENTS}
    assert choices["allow_cpu_fallback"] == ["", "true", "false"]
