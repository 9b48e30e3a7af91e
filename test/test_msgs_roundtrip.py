"""Every dts_msgs message crosses DDS on loopback between two rclpy nodes, field by field equal."""

from __future__ import annotations

import array
import math
from typing import Any, Callable

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="ROS environment not sourced (scripts/env.sh)")
dts_msgs = pytest.importorskip("dts_msgs.msg", reason="dts_msgs not built (scripts/setup.sh)")

from builtin_interfaces.msg import Time  # noqa: E402
from dts_msgs.msg import (  # noqa: E402
    ActionChunk, EpisodeStatus, Instruction, PlanDiagnostics, VideoPlan)
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

RNG = np.random.default_rng(0)


def _header(frame_id: str = "camera_optical_frame") -> Header:
    return Header(stamp=Time(sec=1_700_000_123, nanosec=456_789), frame_id=frame_id)


def _image(height: int, width: int, seed: int) -> Image:
    data = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image(header=_header(), height=height, width=width, encoding="rgb8",
                 is_bigendian=0, step=width * 3, data=data.tobytes())


def make_instruction() -> Instruction:
    """Build a fully populated Instruction."""
    return Instruction(header=_header(""), text="open the door — carefully",
                       task_id="door-open-v3")


def make_diagnostics(rounds: int = 3, tokens: int = 11) -> PlanDiagnostics:
    """Build a fully populated PlanDiagnostics (every field non-default)."""
    return PlanDiagnostics(
        header=_header(), plan_id="plan-0042", status=PlanDiagnostics.STALE_INPUT,
        message="image 0.8 s old", sampler="dts", model_id="avdc-metaworld-64@1a2b3c",
        device="cpu", nfe=123, depth=31, draft_calls=10, target_calls=21, rounds=rounds,
        accepted_tokens=8, rejected_tokens=3, acceptance_rate=float(np.float32(8 / 11)),
        accepted_per_round=[4, 3, 1], rejected_per_round=[1, 1, 1],
        thresholds=RNG.random(rounds, dtype=np.float32).tolist(),
        distances=RNG.random(tokens, dtype=np.float32).tolist(),
        queue_wait_s=0.0125, sampling_time_s=1.75, total_latency_s=1.8125, image_age_s=0.8)


def make_video_plan(frames: int = 3, height: int = 6, width: int = 8) -> VideoPlan:
    """Build a VideoPlan with ``frames`` random rgb8 frames and nested diagnostics."""
    return VideoPlan(
        header=_header(), plan_id="plan-0042", instruction="open the door", task_id="door-open-v3",
        frames=[_image(height, width, seed) for seed in range(frames)], frame_dt=0.4,
        diagnostics=make_diagnostics())


def make_action_chunk() -> ActionChunk:
    """Build an end-effector ActionChunk (horizon 7 x 4 dims)."""
    names = ["dx", "dy", "dz", "gripper"]
    data = RNG.uniform(-1, 1, (7, len(names))).astype(np.float32)
    return ActionChunk(
        header=_header("world"), plan_id="plan-0042",
        action_space=ActionChunk.END_EFFECTOR_DELTA_XYZ_GRIPPER, dimension_names=names,
        dt=0.0125, horizon=7, data=data.ravel().tolist())


def make_episode_status() -> EpisodeStatus:
    """Build a finished-episode EpisodeStatus."""
    return EpisodeStatus(
        header=_header("world"), task="door-open-v3", episode=4, step=85, max_steps=500,
        reward=9.75, success=True, done=True, reset_reason=EpisodeStatus.RESET_SUCCESS)


MESSAGES: dict[str, Callable[[], Any]] = {
    "Instruction": make_instruction,
    "PlanDiagnostics": make_diagnostics,
    "VideoPlan": make_video_plan,
    "VideoPlan_8x64x64": lambda: make_video_plan(frames=8, height=64, width=64),
    "ActionChunk": make_action_chunk,
    "EpisodeStatus": make_episode_status,
}


def assert_msg_equal(got: Any, want: Any, path: str = "msg") -> None:
    """Assert two ROS messages are equal field by field (recursing into messages and arrays)."""
    if hasattr(want, "get_fields_and_field_types"):
        assert type(got) is type(want), f"{path}: type {type(got)} != {type(want)}"
        for field in want.get_fields_and_field_types():
            assert_msg_equal(getattr(got, field), getattr(want, field), f"{path}.{field}")
    elif isinstance(want, (list, tuple, array.array, np.ndarray, bytes)):
        got_l, want_l = list(got), list(want)
        assert len(got_l) == len(want_l), f"{path}: length {len(got_l)} != {len(want_l)}"
        if want_l and hasattr(want_l[0], "get_fields_and_field_types"):
            for i, (g, w) in enumerate(zip(got_l, want_l)):
                assert_msg_equal(g, w, f"{path}[{i}]")
        elif got_l != want_l:
            i = next(i for i, (g, w) in enumerate(zip(got_l, want_l)) if g != w)
            pytest.fail(f"{path}[{i}]: {got_l[i]!r} != {want_l[i]!r}")
    elif isinstance(want, float):
        assert got == want or (math.isnan(got) and math.isnan(want)), f"{path}: {got} != {want}"
    else:
        assert got == want, f"{path}: {got!r} != {want!r}"


def _round_trip(ros: Any, msg: Any, topic: str) -> Any:
    """Publish ``msg`` from one node, return what another node receives over DDS."""
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    talker, listener = ros.node("dts_test_talker"), ros.node("dts_test_listener")
    received: list[Any] = []
    listener.create_subscription(type(msg), topic, received.append, qos)
    pub = talker.create_publisher(type(msg), topic, qos)
    assert ros.wait_for(lambda: pub.get_subscription_count() > 0, timeout=10.0), "no discovery"
    pub.publish(msg)
    assert ros.wait_for(lambda: received, timeout=10.0), f"nothing received on {topic}"
    return received[0]


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_round_trip(ros: Any, name: str) -> None:
    """A published message arrives in another node unchanged."""
    sent = MESSAGES[name]()
    got = _round_trip(ros, sent, f"dts_test/{name.lower()}")
    assert_msg_equal(got, sent)
    assert got == sent
    assert got is not sent


def test_nan_survives_round_trip(ros: Any) -> None:
    """Keep NaN ("not measured", as in BatteryState) intact across DDS."""
    sent = make_diagnostics()
    sent.acceptance_rate = float("nan")
    sent.image_age_s = float("nan")
    got = _round_trip(ros, sent, "dts_test/nan")
    assert math.isnan(got.acceptance_rate) and math.isnan(got.image_age_s)


def test_video_plan_frames_decode() -> None:
    """Frame bytes reshape back into the (H, W, 3) uint8 array they were made from."""
    plan = make_video_plan(frames=2, height=5, width=7)
    frame = plan.frames[1]
    arr = np.frombuffer(bytes(frame.data), np.uint8).reshape(frame.height, frame.width, 3)
    assert arr.shape == (5, 7, 3) and frame.step == 21
    expected = np.random.default_rng(1).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    np.testing.assert_array_equal(arr, expected)


def test_action_chunk_shape_contract() -> None:
    """Check that ActionChunk data is row-major horizon x len(dimension_names)."""
    chunk = make_action_chunk()
    table = np.asarray(chunk.data, np.float32).reshape(chunk.horizon, -1)
    assert table.shape == (chunk.horizon, len(chunk.dimension_names))


@pytest.mark.parametrize("msg_type, constants", [
    (PlanDiagnostics, ["OK", "REJECTED_NAN", "STALE_INPUT", "MODEL_ERROR", "NO_INSTRUCTION",
                       "TIMEOUT", "CANCELLED"]),
    (ActionChunk, ["END_EFFECTOR_DELTA_XYZ_GRIPPER", "JOINT_POSITIONS", "BASE_TWIST",
                   "DISCRETE_NAVIGATION", "NAV_STOP", "NAV_MOVE_FORWARD", "NAV_TURN_LEFT",
                   "NAV_TURN_RIGHT"]),
    (EpisodeStatus, ["RESET_NONE", "RESET_STARTUP", "RESET_SUCCESS", "RESET_TIMEOUT",
                     "RESET_REQUESTED", "RESET_ERROR"]),
])
def test_enum_constants(msg_type: Any, constants: list[str]) -> None:
    """Enum constants exist, are UPPERCASE and distinct within their group."""
    values = [getattr(msg_type, c) for c in constants]
    assert all(c.isupper() for c in constants)
    nav = [v for c, v in zip(constants, values) if c.startswith("NAV_")]
    other = [v for c, v in zip(constants, values) if not c.startswith("NAV_")]
    assert len(set(nav)) == len(nav) and len(set(other)) == len(other)


@pytest.mark.parametrize("msg_type", [Instruction, PlanDiagnostics, VideoPlan, ActionChunk,
                                      EpisodeStatus])
def test_header_first(msg_type: Any) -> None:
    """Every top-level message starts with a std_msgs/Header header."""
    fields = msg_type.get_fields_and_field_types()
    assert next(iter(fields.items())) == ("header", "std_msgs/Header")
