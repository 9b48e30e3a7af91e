"""The one place that builds action predictors (used by the ROS node and the evaluation).

``make_predictor(kind, mode, checkpoint_path, device, task=...)`` returns a ready
`ActionPredictor`; weights are loaded once per call, so build one predictor and
``reset(seed)`` it at the start of every episode. ``required_parts(kind, mode)`` names the
observation parts the predictor reads (the keys of `dts_planner.ros.ObservationSync`, plus
``state`` for the scripted expert, which only the simulator has).
"""

from __future__ import annotations

from pathlib import Path

from dts_planner.predictors.base import ActionPredictor

PLAN_KINDS = ("optical_flow", "diffusion_policy", "goal_servo")
"""Predictors that follow the video plan."""
BASELINE_KINDS = ("expert", "random", "no_plan")
"""References: the scripted expert (simulation only), random actions, the default predictor
blind to the plan (it gets the current frame repeated as its plan)."""
PREDICTOR_KINDS = (*PLAN_KINDS, *BASELINE_KINDS)
MODES = ("manipulation", "navigation")
DEFAULT_KIND = "goal_servo"
"""The predictor a plain evaluation and `config/planner.yaml` use."""

_FLOW_PARTS = {"rgb", "depth", "object_mask", "hand_pos", "intrinsics", "cam_to_world"}
_TORCH_KINDS = ("diffusion_policy", "goal_servo")


def _check(kind: str, mode: str) -> None:
    """Raise ValueError unless `kind` exists and works in `mode`."""
    if kind not in PREDICTOR_KINDS:
        raise ValueError(f"unknown predictor type {kind!r}; choose from {PREDICTOR_KINDS}")
    if mode not in MODES:
        raise ValueError(f"unknown predictor mode {mode!r}; choose from {MODES}")
    if mode == "navigation" and kind != "optical_flow":
        raise ValueError(f"predictor type {kind} drives the Meta-World arm only (predictor.mode "
                         "manipulation); navigation needs optical_flow")


def uses_torch(kind: str) -> bool:
    """Whether predictor `kind` runs torch weights (on a device); the others never load torch."""
    return kind in _TORCH_KINDS or (kind == "no_plan" and uses_torch(DEFAULT_KIND))


def required_parts(kind: str, mode: str = "manipulation") -> set[str]:
    """Observation parts the predictor reads (ValueError if the kind/mode is unusable).

    Parts: rgb, depth, object_mask, hand_pos, intrinsics, cam_to_world (and ``state``, the
    39-d Meta-World state vector, for ``expert``).
    """
    _check(kind, mode)
    if kind == "no_plan":
        return required_parts(DEFAULT_KIND, mode)
    if kind == "diffusion_policy":
        from dts_planner.predictors.diffusion_policy_predictor import REQUIRED_PARTS
        return set(REQUIRED_PARTS)
    if kind == "goal_servo":
        from dts_planner.predictors.goal_servo import REQUIRED_PARTS
        return set(REQUIRED_PARTS)
    if kind == "expert":
        return {"state"}
    if kind == "random":
        return {"rgb"}   # nothing is read; one camera frame paces the predictor
    if mode == "navigation":
        return {"rgb", "depth", "intrinsics"}
    return set(_FLOW_PARTS)


def make_predictor(kind: str, mode: str = "manipulation", checkpoint_path: str = "",
                   device: str = "cpu", *, task: str = "", seed: int = 0) -> ActionPredictor:
    """Build a predictor (ValueError with the reason if it cannot be built).

    kind: one of PREDICTOR_KINDS; mode: "manipulation" (Meta-World arm) or "navigation"
    (optical_flow only); checkpoint_path: diffusion-policy weights for ``diffusion_policy`` and
    ``goal_servo`` (which needs their goal-state head) ("" = the shipped ones);
    device: torch device of the weights; task: Meta-World task for ``expert`` ("door-open" or
    "door-open-v3"); seed: the seed `reset()` falls back to (pass each episode's seed to
    `reset(seed)` instead of building a new predictor).
    """
    _check(kind, mode)
    if kind == "no_plan":
        from dts_planner.predictors.baselines import NoPlanPredictor
        return NoPlanPredictor(make_predictor(DEFAULT_KIND, mode, checkpoint_path, device,
                                              seed=seed))
    if kind == "optical_flow":
        if mode == "navigation":
            from dts_planner.predictors.navigation import (
                FlowNavigationPolicy, NavigationPolicyConfig)
            return FlowNavigationPolicy(NavigationPolicyConfig(seed=seed))
        from dts_planner.predictors.manipulation_flow_policy import (
            FlowManipulationPolicy, FlowPolicyConfig)
        return FlowManipulationPolicy(FlowPolicyConfig(seed=seed))
    if kind in _TORCH_KINDS:
        from dts_planner.predictors.diffusion_policy import load_policy
        from dts_planner.predictors.diffusion_policy_predictor import (
            DEFAULT_POLICY_WEIGHTS, DiffusionPolicyPredictor)
        path = Path(checkpoint_path) if checkpoint_path else DEFAULT_POLICY_WEIGHTS
        if not path.is_file():
            raise ValueError(f"diffusion-policy checkpoint '{path}' not found; set "
                             "predictor.checkpoint_path")
        policy = load_policy(str(path), device)
        if kind == "diffusion_policy":
            return DiffusionPolicyPredictor(policy, seed=seed)
        from dts_planner.predictors.goal_servo import GoalServoPredictor
        return GoalServoPredictor(policy)   # deterministic: nothing to seed
    if kind == "expert":
        if not task:
            raise ValueError("predictor type expert needs the Meta-World task (task=...)")
        from dts_planner.predictors.baselines import ExpertPredictor
        from dts_planner.sim.tasks import env_name
        return ExpertPredictor(env_name(task))
    from dts_planner.predictors.baselines import RandomPredictor
    return RandomPredictor(seed)
