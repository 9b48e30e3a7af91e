"""Shared pytest fixtures: the tiny video problem, one torch thread, a real rclpy context.

``tiny_problem`` (session scope): a :class:`TinyProblem` -- a random-weight tiny video U-Net
(``TINY_CONFIG``, 8x8, 2 frames), noise and conditioning for 2 samples. Every test runs with
ONE torch thread (autouse): on a loaded 2-core machine two threads spin against each other and
a small model call can take 100x longer.

Usage in a test (rclpy is imported lazily, so ROS-free tests never need the ROS environment)::

    def test_echo(ros):
        pub_node = ros.node("talker")                       # rclpy Node in ros.context
        sub_node = ros.add_node(MyLifecycleNode(context=ros.context))  # or bring your own node
        got = []
        sub_node.create_subscription(Instruction, "instruction", got.append, 10)
        pub = pub_node.create_publisher(Instruction, "instruction", 10)
        assert ros.wait_for(lambda: pub.get_subscription_count() > 0)
        pub.publish(Instruction(text="open the door"))
        assert ros.wait_for(lambda: got, timeout=5.0)

Every pytest process holds its own ROS domain id (an flock on /tmp/dts_ros_domain_<id>.lock),
so parallel test runs on one machine never cross-talk; discovery is limited to localhost.
Nodes are destroyed, the executor thread is stopped and joined and the context is shut down at
teardown (in that order: stopping the executor before shutdown avoids an abort at exit).
"""

from __future__ import annotations

from dataclasses import dataclass
import fcntl
import gc
import os
from pathlib import Path
import shutil
import threading
import time
from typing import Any, Callable, Iterator, TYPE_CHECKING

import pytest

if TYPE_CHECKING:   # torch loads in the test processes, not in xdist's controller
    import torch

TINY_PROBLEM_SEED = 2


def pytest_configure(config: pytest.Config) -> None:
    """Pause the cyclic GC in a process that imports the test modules, until they are in.

    Importing torch, diffusers, MuJoCo and the test modules leaves about 460k objects, and the
    GC walked them all seven times on the way (0.7 s a worker). xdist's controller imports no
    test module and keeps its GC running.
    """
    controller = bool(getattr(config.option, "numprocesses", None)) and not hasattr(
        config, "workerinput")
    if not controller:
        gc.disable()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put the tests marked ``long_running`` first, the rest in their order.

    With xdist's worksteal (scripts/test.sh) a worker that runs out takes queued tests from the
    end of the other's queue; long tests at the end would leave one worker running alone.
    """
    items.sort(key=lambda item: item.get_closest_marker("long_running") is None)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Move the imported objects out of the GC's reach (gc.freeze), then let it run again.

    Full collections during the tests then walk only the tests' own objects. GC time in the
    two workers of a run fell from 4.4 s to 1.1 s (gc.callbacks, measured).
    """
    gc.freeze()
    gc.enable()


@dataclass(frozen=True)
class TinyProblem:
    """A tiny random-weight video model with noise (2, F*3, 8, 8), its cond and text tokens."""

    model: Any
    noise: torch.Tensor
    cond: dict[str, torch.Tensor]
    task: torch.Tensor


def make_tiny_problem(seed: int = TINY_PROBLEM_SEED, batch: int = 2) -> TinyProblem:
    """Build the tiny video problem for ``batch`` samples from ``seed``."""
    import torch

    from dts_planner.models import random_video_model, TINY_CONFIG

    model = random_video_model(TINY_CONFIG)
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(model.noise_shape(batch), generator=generator)
    image = torch.rand(batch, 3, *TINY_CONFIG.image_size, generator=generator)
    task = torch.randn(batch, 3, TINY_CONFIG.text_dim, generator=generator)
    return TinyProblem(model, noise, model.make_cond(image, task), task)


@pytest.fixture(scope="session")
def tiny_problem() -> TinyProblem:
    """Return the tiny video problem (2 samples), shared by the sampler tests (read-only)."""
    return make_tiny_problem()


CALIBRATION_TARGET = 0.6
"""Target acceptance rate of the `calibrated` fixture."""


@pytest.fixture(scope="session")
def calibrated(tmp_path_factory):
    """Calibrate a tiny checkpoint on a seconds-long grid; save the file next to it.

    The checkpoint is TINY_CONFIG with MiniLM-sized task tokens, so a planner node can load it.
    Returns (checkpoint path, its sha256, the Calibration, the calibration file's path).
    """
    from dataclasses import replace

    from dts_planner.bench.sweeps import make_problems
    from dts_planner.calibrate.measure import calibrate, Grid
    from dts_planner.calibration import calibration_path, file_sha256
    from dts_planner.diffusion import DTSSettings
    from dts_planner.models import (
        load_video_model, random_video_model, save_checkpoint, TINY_CONFIG)

    folder = tmp_path_factory.mktemp("calibration")
    checkpoint = folder / "tiny.pt"
    config = replace(TINY_CONFIG, unet=replace(TINY_CONFIG.unet, task_token_channels=384))
    save_checkpoint(checkpoint, random_video_model(config, seed=3))
    model = load_video_model(checkpoint)
    digest = file_sha256(checkpoint)
    grid = Grid(fixed=("ddim:num_steps=5", "dpm_solver:num_steps=4"), dts_chunks=(3,),
                dts_target_strides=(5,), targets=(1.0, CALIBRATION_TARGET),
                reference="ddim:num_steps=20", cost_repeats=1)
    base = DTSSettings(target_stride=5, chunk=3)
    calibration = calibrate(model, make_problems(model, 3, metaworld=False), grid,
                            CALIBRATION_TARGET, base,
                            model_info={"path": str(checkpoint), "id": f"tiny@{digest[:8]}",
                                        "hash": digest}, device_name="cpu", progress=False,
                            log=lambda line: None)
    path = calibration.save(calibration_path(checkpoint))
    return checkpoint, digest, calibration, path


def built_once(tmp_path_factory, name: str, build: Callable[[Path], None]) -> Path:
    """Folder ``name`` filled by ``build(folder)`` once per test run, for every worker.

    pytest-xdist workers share their run's temp root: the first worker to ask builds the folder
    under a file lock, the others wait and reuse it. Read-only data only.
    """
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    folder, done = root / name, root / f"{name}.done"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)   # a worker that failed half-way
            folder.mkdir()
            build(folder)
            done.touch()
    return folder


@pytest.fixture(scope="session")
def reach_shards(tmp_path_factory) -> Path:
    """Two expert reach episodes (corner camera, seeds 0-1, 16 px): a shard folder, read-only.

    Generated once per test run (a MuJoCo run) for the trainers' tests.
    """
    from dts_planner.data.generate_metaworld import generate

    return built_once(tmp_path_factory, "reach_shards", lambda folder: generate(
        folder, tasks=["reach"], cameras=["corner"], seeds=range(0, 2), resolution=16))


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Run every test with one torch thread, then restore the count."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


_DOMAIN_MIN, _DOMAIN_MAX = 1, 101  # valid Fast DDS domain ids with default ports


def _claim_domain_id() -> tuple[int, Any]:
    """Return a ROS domain id not used by any other pytest process here, and its held lock."""
    first = int(os.environ.get("DTS_TEST_DOMAIN_ID", "0")) or (os.getpid() % 100 + 1)
    span = _DOMAIN_MAX - _DOMAIN_MIN + 1
    for k in range(span):
        domain = _DOMAIN_MIN + (first - _DOMAIN_MIN + k) % span
        handle = open(f"/tmp/dts_ros_domain_{domain}.lock", "a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        return domain, handle
    raise RuntimeError("no free ROS domain id in 1..101 (too many concurrent test runs?)")


@pytest.fixture(scope="session")
def ros_domain_id() -> Iterator[int]:
    """Claim a ROS domain id for this pytest process and export it (for subprocesses too)."""
    domain, lock = _claim_domain_id()
    os.environ["ROS_DOMAIN_ID"] = str(domain)
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.pop("ROS_LOCALHOST_ONLY", None)  # deprecated; conflicts with the variable above
    try:
        yield domain
    finally:
        lock.close()


class RosHarness:
    """An rclpy context with a SingleThreadedExecutor spinning in a background thread.

    One executor thread, as each node process runs (`dts_planner.ros.spin`); a multi-threaded
    one cost the ROS tests 23 % more CPU (27.5 s vs 21.2 s user) spinning its workers.

    Attributes: ``context`` (rclpy Context), ``executor`` (SingleThreadedExecutor),
    ``domain_id`` (int). Nodes made by :meth:`node` or passed to :meth:`add_node` are spun
    by the executor and destroyed at teardown.
    """

    def __init__(self, domain_id: int) -> None:
        """Initialise a fresh context on ``domain_id`` and start spinning."""
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        self.domain_id = domain_id
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.executor = SingleThreadedExecutor(context=self.context)
        self._nodes: list[Any] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, name="ros-executor", daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while not self._stop.is_set() and self.context.ok():
            self.executor.spin_once(timeout_sec=0.05)

    def node(self, name: str, **kwargs: Any) -> Any:
        """Create an ``rclpy.node.Node`` in this context, spun by the executor."""
        from rclpy.node import Node

        return self.add_node(Node(name, context=self.context, **kwargs))

    def add_node(self, node: Any) -> Any:
        """Spin an existing node (created with ``context=self.context``); return it."""
        self._nodes.append(node)
        self.executor.add_node(node)
        return node

    def destroy_node(self, node: Any) -> None:
        """Stop spinning ``node`` and destroy it now (not at teardown)."""
        self.executor.remove_node(node)
        self._nodes.remove(node)
        node.destroy_node()

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0,
                 interval: float = 0.01) -> bool:
        """Poll ``predicate`` until it is truthy or ``timeout`` (s) passes; return the outcome."""
        deadline = time.monotonic() + timeout
        while True:
            if predicate():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(interval)

    def close(self) -> None:
        """Stop and join the executor thread, destroy the nodes, shut the context down."""
        import rclpy

        self._stop.set()
        self._thread.join(timeout=10.0)
        for node in reversed(self._nodes):
            self.executor.remove_node(node)
            node.destroy_node()
        self.executor.shutdown(timeout_sec=5.0)
        if self.context.ok():
            rclpy.shutdown(context=self.context)


@pytest.fixture
def ros(ros_domain_id: int) -> Iterator[RosHarness]:
    """Yield a :class:`RosHarness` (fresh context + spinning executor), closed at teardown."""
    harness = RosHarness(ros_domain_id)
    try:
        yield harness
    finally:
        harness.close()
