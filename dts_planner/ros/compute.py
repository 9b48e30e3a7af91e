"""One compute thread per process: every torch call of the nodes runs on it.

PyTorch's CPU backend (OpenMP, libgomp) gives each thread that enters a parallel region its own
thread team, and a team started from a second thread runs far slower while the first one's
thread lives: measured on this 2-core CPU, a DTS plan took 0.95 s from a worker thread against
0.48 s from the main thread once the main thread had run a single parallel op (loading or
warming up the model); a plain conv stack ran at 1.5 instead of 2.0 busy cores. The nodes
therefore never touch torch on their own threads: model loading, warm-up, sampling and torch
predictors go through `compute_thread().call(...)`, so all of a process's parallel regions
start from this one thread (and the main thread, which runs the ROS executor, stays free of
torch). Calls from several threads are served one at a time, in order.
"""

from __future__ import annotations

from concurrent.futures import Future
import queue
import threading
from typing import Any, Callable, TypeVar

T = TypeVar("T")


class ComputeThread:
    """A thread that runs submitted callables one at a time; `call` waits for the result."""

    def __init__(self, name: str = "dts-compute") -> None:
        """Prepare the thread; it starts on the first call."""
        self._name = name
        self._jobs: queue.SimpleQueue[tuple[Future, Callable[[], Any]] | None] = (
            queue.SimpleQueue())
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(*args, **kwargs)` on the compute thread and return (or raise) its result.

        Called from the compute thread itself (a nested call), `fn` runs at once.
        """
        if threading.current_thread() is self._thread:
            return fn(*args, **kwargs)
        future: Future = Future()
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._jobs.put((future, lambda: fn(*args, **kwargs)))
        return future.result()

    def close(self, timeout_s: float = 5.0) -> bool:
        """Finish the queued calls and end the thread; True if it ended within `timeout_s`."""
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is None:
                return True
            self._jobs.put(None)
        thread.join(timeout_s)
        return not thread.is_alive()

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            future, fn = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except BaseException as error:  # noqa: BLE001 - handed to the caller
                future.set_exception(error)


_SHARED = ComputeThread()


def compute_thread() -> ComputeThread:
    """Return the process's compute thread (shared by every node in the process)."""
    return _SHARED
