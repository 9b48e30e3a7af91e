"""Message stamps as integer nanoseconds, and the checks that keep bad stamps out of planning.

`Time.from_msg` raises on a negative stamp, which inside a callback would end the executor
loop; `stamp_ns` never raises. `stamp_problem` names what is wrong with a stamp (a counter key).
"""

from __future__ import annotations

from typing import Any

NS_PER_S = 10**9


def stamp_ns(stamp: Any) -> int:
    """builtin_interfaces/Time -> integer ns (may be negative; never raises)."""
    return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)


def stamp_problem(stamp: Any, now_ns: int, max_future_s: float) -> str | None:
    """Counter key of a stamp that must not be planned from, or None when it is usable.

    negative_stamp: before 1970 (sec < 0); bad_nanosec: nanosec >= 1e9; future_stamp: more
    than `max_future_s` after `now_ns`. A zero (unset) stamp is usable: ages then count from
    reception.
    """
    if stamp.sec < 0:
        return "negative_stamp"
    if stamp.nanosec >= NS_PER_S:
        return "bad_nanosec"
    if stamp_ns(stamp) > now_ns + max_future_s * NS_PER_S:
        return "future_stamp"
    return None
