"""Health bookkeeping of a node and its /diagnostics message (diagnostic_updater is not used).

`NodeHealth` collects event counters, an input rate, gauges and short series (reported as
median and p95) from any thread;
`status()` turns them into one `diagnostic_msgs/DiagnosticStatus`: OK, WARN when no input came
for `no_input_warn_s`, when too many recent inputs were invalid (or on the node's own warning),
ERROR when the node cannot work.
"""

from __future__ import annotations

from collections import Counter, deque
import math
import threading
import time
from typing import Mapping

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
import numpy as np

_RATE_WINDOW_S = 5.0
_VALIDITY_WINDOW_S = 10.0
_VALIDITY_MIN_INPUTS = 10
_SERIES_LENGTH = 500


class NodeHealth:
    """Thread-safe counters, input rate and gauges of one node (times: time.monotonic(), s)."""

    def __init__(self) -> None:
        """Start with no events."""
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._arrivals: deque[float] = deque()
        self._validity: deque[tuple[float, bool]] = deque()
        self._last_input: float | None = None
        self._started = time.monotonic()
        self._gauges: dict[str, float | str] = {}
        self._series: dict[str, deque[float]] = {}

    def expect_input(self) -> None:
        """Start the no-input clock now (on activation), forgetting earlier input."""
        with self._lock:
            self._started, self._last_input = time.monotonic(), None
            self._arrivals.clear()
            self._validity.clear()

    def count(self, event: str, amount: int = 1) -> None:
        """Add `amount` to the counter `event`."""
        with self._lock:
            self._counts[event] += amount

    def counts(self) -> dict[str, int]:
        """Return a copy of all counters."""
        with self._lock:
            return dict(self._counts)

    def input_arrived(self, now: float | None = None) -> None:
        """Record one input message (for the input rate and the no-input warning)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self._last_input = now
            self._arrivals.append(now)
            while self._arrivals and self._arrivals[0] < now - _RATE_WINDOW_S:
                self._arrivals.popleft()

    def input_valid(self, valid: bool, now: float | None = None) -> None:
        """Record whether one input message was usable (for the invalid-input warning)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self._validity.append((now, valid))
            while self._validity and self._validity[0][0] < now - _VALIDITY_WINDOW_S:
                self._validity.popleft()

    def invalid_fraction(self, now: float | None = None) -> tuple[float, int]:
        """Fraction of the inputs of the last 10 s that were invalid, and how many there were."""
        now = time.monotonic() if now is None else now
        with self._lock:
            recent = [valid for t, valid in self._validity if t >= now - _VALIDITY_WINDOW_S]
        return (recent.count(False) / len(recent) if recent else 0.0), len(recent)

    def input_rate(self, now: float | None = None) -> float:
        """Input messages per second over the last few seconds."""
        now = time.monotonic() if now is None else now
        with self._lock:
            recent = [t for t in self._arrivals if t >= now - _RATE_WINDOW_S]
        span = min(_RATE_WINDOW_S, now - self._started)
        return len(recent) / span if span > 0 else 0.0

    def seconds_without_input(self, now: float | None = None) -> float:
        """Seconds since the last input (since start-up when none came)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            return now - (self._last_input if self._last_input is not None else self._started)

    def observe(self, series: str, value: float) -> None:
        """Record one value of `series` (the last few hundred are kept)."""
        with self._lock:
            self._series.setdefault(series, deque(maxlen=_SERIES_LENGTH)).append(value)

    def series(self, name: str) -> list[float]:
        """Return the kept values of series `name`, oldest first."""
        with self._lock:
            return list(self._series.get(name, ()))

    def set(self, **gauges: float | str) -> None:
        """Set named gauges (last latency, last image age, model id, ...)."""
        with self._lock:
            self._gauges.update(gauges)

    def gauges(self) -> dict[str, float | str]:
        """Return a copy of the gauges."""
        with self._lock:
            return dict(self._gauges)

    def status(self, name: str, hardware_id: str, no_input_warn_s: float,
               error: str = "", warning: str = "",
               invalid_warn_fraction: float = 1.0) -> DiagnosticStatus:
        """Build the DiagnosticStatus (ERROR, WARN or OK).

        ERROR if `error`; WARN on `warning`, on no input for `no_input_warn_s`, or when more
        than `invalid_warn_fraction` of the last 10 s of inputs (10 at least) were invalid.
        """
        now = time.monotonic()
        silent_s = self.seconds_without_input(now)
        invalid, inputs = self.invalid_fraction(now)
        values: dict[str, float | str | int] = {
            "input_rate_hz": self.input_rate(now), "seconds_without_input": silent_s,
            "invalid_input_fraction": invalid}
        values.update(self.gauges())
        for series in list(self._series):
            kept = self.series(series)
            if kept:
                values[f"{series}_median"] = float(np.median(kept))
                values[f"{series}_p95"] = float(np.percentile(kept, 95))
        values.update(self.counts())
        if error:
            level, message = DiagnosticStatus.ERROR, error
        elif warning:
            level, message = DiagnosticStatus.WARN, warning
        elif silent_s > no_input_warn_s:
            level, message = DiagnosticStatus.WARN, f"no input for {silent_s:.1f} s"
        elif inputs >= _VALIDITY_MIN_INPUTS and invalid > invalid_warn_fraction:
            level, message = DiagnosticStatus.WARN, (
                f"{100 * invalid:.0f} % of the inputs of the last {_VALIDITY_WINDOW_S:.0f} s "
                "were invalid (see the *_invalid_* counters)")
        else:
            level, message = DiagnosticStatus.OK, "ok"
        return DiagnosticStatus(level=level, name=name, message=message,
                                hardware_id=hardware_id, values=key_values(values))


def key_values(values: Mapping[str, float | str | int]) -> list[KeyValue]:
    """Convert to a KeyValue list; floats with 4 significant digits, NaN as 'nan'."""
    def text(value: float | str | int) -> str:
        if isinstance(value, float):
            return "nan" if math.isnan(value) else f"{value:.4g}"
        return str(value)
    return [KeyValue(key=key, value=text(value)) for key, value in values.items()]


def diagnostic_array(stamp, statuses: list[DiagnosticStatus]) -> DiagnosticArray:
    """Wrap statuses in a DiagnosticArray stamped `stamp` (builtin_interfaces/Time)."""
    msg = DiagnosticArray(status=statuses)
    msg.header.stamp = stamp
    return msg
