"""Benchmarks, run as ``python -m dts_planner.bench <name> [options]`` (see ``__main__``)."""
