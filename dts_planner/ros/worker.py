"""Latest-value slots filled by subscription callbacks and the one worker thread that drains them.

Callbacks only `put` into a `LatestSlot` (no backlog: a new value replaces an untaken one);
`Worker` runs the node's heavy step on one dedicated thread, so model calls never run inside an
executor callback and never run concurrently.
"""

from __future__ import annotations

import threading
from typing import Callable, Generic, TypeVar

T = TypeVar("T")


class LatestSlot(Generic[T]):
    """Thread-safe holder of the newest value."""

    def __init__(self) -> None:
        """Start empty."""
        self._lock = threading.Lock()
        self._value: T | None = None
        self._fresh = False

    def put(self, value: T) -> bool:
        """Store `value`; True when it replaced a value nobody took (a skipped one)."""
        with self._lock:
            skipped = self._fresh
            self._value, self._fresh = value, True
            return skipped

    def take(self) -> T | None:
        """Return the value if it was not taken yet, else None; `peek` still reads it."""
        with self._lock:
            if not self._fresh:
                return None
            self._fresh = False
            return self._value

    def peek(self) -> T | None:
        """Return the newest value, taken or not (None before the first put)."""
        with self._lock:
            return self._value

    def clear(self) -> None:
        """Forget the value."""
        with self._lock:
            self._value, self._fresh = None, False


class Worker:
    """One thread calling `step()` until stopped; it sleeps when `step()` returns False.

    step: does one unit of work and returns whether it did any. on_error: called with the
    exception when step raises; the thread keeps running. alive: the thread ends once it returns
    False (pass the rclpy context's `ok`). on_exit: called on the thread as it ends (to free
    what the thread owns, such as a simulator).
    """

    def __init__(self, name: str, step: Callable[[], bool],
                 on_error: Callable[[BaseException], None], alive: Callable[[], bool],
                 idle_wait_s: float = 0.05, on_exit: Callable[[], None] | None = None) -> None:
        """Prepare the thread (not started)."""
        self._step, self._on_error, self._idle_wait_s = step, on_error, idle_wait_s
        self._alive, self._on_exit = alive, on_exit
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def notify(self) -> None:
        """Wake the thread now (new input arrived)."""
        self._wake.set()

    def stop(self, timeout_s: float = 5.0) -> bool:
        """Ask the thread to finish its current step and exit; True if it did within timeout.

        Long steps check `stopping` (the planner's sampler does between model calls), so a
        step in flight ends within one model call.
        """
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)
        return not self._thread.is_alive()

    @property
    def running(self) -> bool:
        """Whether the thread is alive."""
        return self._thread.is_alive()

    @property
    def stopping(self) -> bool:
        """Whether stop() was called (long steps may check it to return early)."""
        return self._stopping.is_set()

    def _run(self) -> None:
        try:
            while not self._stopping.is_set() and self._alive():
                try:
                    worked = self._step()
                except Exception as error:  # noqa: BLE001 - the node must outlive bad input
                    if not self._alive():     # shutting down: publishers are gone
                        break
                    self._on_error(error)
                    worked = False
                if not worked:
                    self._wake.wait(self._idle_wait_s)
                    self._wake.clear()
        finally:
            if self._on_exit is not None:
                self._on_exit()
