"""The video policy's closed-loop rules, shared by the evaluation and the ROS nodes (ROS-free)."""

from dts_planner.policy.closed_loop import (
    ClosedLoopPolicy, hold, LoopRules, plan_seed, PlanRequest, SEEDS_PER_EPISODE)

__all__ = ["ClosedLoopPolicy", "LoopRules", "PlanRequest", "SEEDS_PER_EPISODE", "hold",
           "plan_seed"]
