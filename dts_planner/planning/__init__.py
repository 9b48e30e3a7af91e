"""Planning: image + instruction -> Plan, gluing a video model, a text encoder and a sampler."""

from dts_planner.planning.video_planner import Plan, VideoPlanner

__all__ = ["Plan", "VideoPlanner"]
