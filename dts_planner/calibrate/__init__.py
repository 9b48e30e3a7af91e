"""``python -m dts_planner.calibrate``: measure a model on this device, write its calibration.

``measure``: the measurement (distance profiles, fidelity and time of the candidates, forward
cost per batch size); ``report``: its tables and frontier plot. The file format, the threshold
rule and the budget chooser are in :mod:`dts_planner.calibration` (a lower layer, so the
planner can use them without this command's dependencies).
"""
