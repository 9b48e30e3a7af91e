"""Latest-value slot, worker thread, health counters and observation assembly (no ROS graph)."""

from __future__ import annotations

import threading
import time

from diagnostic_msgs.msg import DiagnosticStatus
import numpy as np

from dts_planner.ros.diagnostics import NodeHealth
from dts_planner.ros.observation_sync import ObservationSync
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


def test_observation_sync_matches_stamps() -> None:
    """An observation is complete only when every required part shares the image's stamp."""
    sync = ObservationSync({"rgb", "depth", "intrinsics"})
    rgb, depth = np.zeros((2, 2, 3), np.uint8), np.ones((2, 2), np.float32)
    assert sync.add(5, "rgb", rgb, header="h5") is None          # no depth, no intrinsics
    sync.set_latest("intrinsics", np.eye(3) * 2)
    assert sync.add(4, "depth", depth) is None                   # other stamp
    obs = sync.add(5, "depth", depth)
    assert obs is not None and obs.stamp_ns == 5 and obs.header == "h5"
    np.testing.assert_array_equal(obs.intrinsics, np.eye(3) * 2)
    assert obs.object_mask.shape == (2, 2) and not obs.object_mask.any()


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
