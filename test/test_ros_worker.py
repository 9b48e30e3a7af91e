"""Latest-value slot, worker thread, health counters and approximate-time sync (no graph)."""

from __future__ import annotations

import threading
import time

from diagnostic_msgs.msg import DiagnosticStatus
import numpy as np
import pytest

from dts_planner.ros.diagnostics import NodeHealth
from dts_planner.ros.observation_sync import ApproximateSync
from dts_planner.ros.worker import LatestSlot, Worker


def test_latest_slot_keeps_only_the_newest() -> None:
    """Put overwrites (reporting a skipped value); take empties; peek still reads."""
    slot: LatestSlot[int] = LatestSlot()
    assert slot.take() is None and slot.put(1) is False
    assert slot.put(2) is True
    assert slot.take() == 2 and slot.take() is None and slot.peek() == 2
    slot.clear()
    assert slot.peek() is None


def test_worker_survives_errors_and_stops() -> None:
    """An exception in step is reported and the thread keeps going; stop joins it."""
    calls, errors, exited = [], [], threading.Event()

    def step() -> bool:
        calls.append(threading.current_thread().name)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return False

    worker = Worker("test-worker", step, errors.append, lambda: True, idle_wait_s=0.01,
                    on_exit=exited.set)
    worker.start()
    deadline = time.monotonic() + 2
    while len(calls) < 3 and time.monotonic() < deadline:
        worker.notify()
        time.sleep(0.01)
    assert worker.stop() and exited.is_set()
    assert len(calls) >= 3 and set(calls) == {"test-worker"}
    assert [str(e) for e in errors] == ["boom"]


def test_health_status_levels() -> None:
    """OK with input, WARN after silence or on a warning, ERROR on an error; counters listed."""
    health = NodeHealth()
    health.input_arrived()
    health.count("images_stale", 2)
    for latency in (0.1, 0.2, 0.3):
        health.observe("latency_s", latency)
    ok = health.status("n", "cpu", no_input_warn_s=10.0)
    values = {kv.key: kv.value for kv in ok.values}
    assert ok.level == DiagnosticStatus.OK and ok.name == "n" and values["images_stale"] == "2"
    assert values["latency_s_median"] == "0.2" and float(values["latency_s_p95"]) > 0.28
    assert float(values["input_rate_hz"]) > 0
    assert health.status("n", "cpu", no_input_warn_s=0.0).level == DiagnosticStatus.WARN
    assert "no input" in health.status("n", "cpu", no_input_warn_s=0.0).message
    assert health.status("n", "cpu", 10.0, warning="inactive").level == DiagnosticStatus.WARN
    assert health.status("n", "cpu", 10.0, error="bad").level == DiagnosticStatus.ERROR


def test_invalid_input_fraction_turns_diagnostics_warn() -> None:
    """More than the threshold of invalid inputs over the window -> WARN naming the counters."""
    health = NodeHealth()
    for i in range(20):
        health.input_arrived()
        health.input_valid(i % 2 == 0)
    assert health.invalid_fraction()[0] == 0.5
    status = health.status("n", "cpu", 10.0, invalid_warn_fraction=0.2)
    assert status.level == DiagnosticStatus.WARN and "50 % of the inputs" in status.message
    assert health.status("n", "cpu", 10.0, invalid_warn_fraction=0.6).level == (
        DiagnosticStatus.OK)


MS = 1_000_000


def test_approximate_sync_pairs_colour_and_depth_stamped_apart() -> None:
    """RGB-D drivers stamp colour and depth 5-15 ms apart: each colour frame gets its depth."""
    sync = ApproximateSync(3, slop_ns=20 * MS)
    matched: list[tuple] = []
    sync.registerCallback(lambda *msgs: matched.append(msgs))
    rng = np.random.default_rng(0)
    for frame in range(30):                       # 30 Hz: frames 33 ms apart
        colour = frame * 33 * MS
        depth = colour + int(rng.integers(5, 16)) * MS * (1 if frame % 2 else -1)
        hand = colour + 2 * MS
        for topic, stamp in sorted(((1, depth), (0, colour), (2, hand)), key=lambda x: x[1]):
            sync.add(topic, stamp, (topic, stamp))
    assert len(matched) == 30
    for (colour, depth, hand) in matched:
        assert abs(depth[1] - colour[1]) <= 15 * MS and hand[1] - colour[1] == 2 * MS


def test_approximate_sync_waits_for_a_close_enough_partner() -> None:
    """No depth within the slop: nothing is emitted; a later close one completes the set."""
    sync = ApproximateSync(2, slop_ns=10 * MS)
    matched: list[tuple] = []
    sync.registerCallback(lambda *msgs: matched.append(msgs))
    sync.add(0, 100 * MS, "colour")
    sync.add(1, 130 * MS, "far depth")
    assert not matched
    sync.add(1, 104 * MS, "depth")
    assert matched == [("colour", "depth")]
    sync.add(1, 200 * MS, "depth 2")
    sync.add(0, 205 * MS, "colour 2")
    assert matched[-1] == ("colour 2", "depth 2")
    with pytest.raises(ValueError):
        ApproximateSync(0, slop_ns=1)


def test_worker_ends_when_no_longer_alive() -> None:
    """The thread exits by itself once `alive` turns False (the rclpy context shut down)."""
    alive = threading.Event()
    alive.set()
    worker = Worker("test-alive", lambda: False, print, alive.is_set, idle_wait_s=0.01)
    worker.start()
    alive.clear()
    deadline = time.monotonic() + 2
    while worker.running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not worker.running
