"""Evaluation: closed-loop Meta-World policy runs and the video model's quality bar.

``python -m dts_planner.eval metaworld ...`` (closed loop) and
``python -m dts_planner.eval.video_quality`` (plans' last frames vs the expert's, per sampler).
"""
