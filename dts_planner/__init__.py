"""dts_planner: a video-generation robot policy sampled with Draft-and-Target Sampling (DTS).

Everything below ``dts_planner`` except ``dts_planner.ros`` is ROS-free; see docs/architecture.md.
"""

__version__ = "0.1.0"
