"""QoS profiles of the nodes, built from parameter strings ("best_effort", "reliable", ...)."""

from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

RELIABILITY_CHOICES = ("best_effort", "reliable")
DURABILITY_CHOICES = ("volatile", "transient_local")


def make_qos(reliability: str, depth: int, durability: str = "volatile") -> QoSProfile:
    """KEEP_LAST QoS from lower-case policy names; raises ValueError with the accepted values."""
    if reliability not in RELIABILITY_CHOICES:
        raise ValueError(f"reliability '{reliability}' not in {RELIABILITY_CHOICES}")
    if durability not in DURABILITY_CHOICES:
        raise ValueError(f"durability '{durability}' not in {DURABILITY_CHOICES}")
    if depth < 1:
        raise ValueError(f"depth {depth} < 1")
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=ReliabilityPolicy.get_from_short_key(reliability),
        durability=DurabilityPolicy.get_from_short_key(durability),
    )


def latched_qos() -> QoSProfile:
    """RELIABLE + TRANSIENT_LOCAL, depth 1: a late joiner gets the last message (instructions)."""
    return make_qos("reliable", 1, "transient_local")
