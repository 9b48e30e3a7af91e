"""Assemble predictor observations from camera-side topics stamped close together.

Per-frame topics (colour image, depth, object mask, hand position) are paired by approximate
time: `message_filters.ApproximateTimeSynchronizer` where it imports, else `ApproximateSync`,
a small policy with the same contract (many RGB-D drivers stamp colour and depth separately,
5-15 ms apart). Slow-changing parts (camera_info, camera_pose) use their latest message.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
import threading
from typing import Any, Callable, Sequence

from dts_planner.predictors import PredictorObservation
from dts_planner.ros.stamps import stamp_ns

try:  # message_filters is a ROS package; absent in pip-only environments.
    import message_filters
except ImportError:
    message_filters = None


@dataclass
class StampedObservation:
    """An observation for the predictor, the stamp (ns) of its colour image and its header."""

    stamp_ns: int
    header: Any
    observation: PredictorObservation


class ApproximateSync:
    """Match one message per topic whose stamps lie within `slop_ns` of the first topic's.

    The first topic (the colour image) is the pivot: when every other topic has a queued
    message within `slop_ns` of a pivot message, the closest ones are handed to the callbacks
    as one set (in topic order) and everything up to them is dropped. Each topic keeps its last
    `queue_size` messages; unmatched pivots age out. Thread-safe.
    """

    def __init__(self, num_topics: int, slop_ns: int, queue_size: int = 10) -> None:
        """Match `num_topics` topics (index 0 is the pivot) within `slop_ns` nanoseconds."""
        if num_topics < 1 or slop_ns < 0 or queue_size < 1:
            raise ValueError(f"need num_topics >= 1, slop >= 0, queue_size >= 1, got "
                             f"{num_topics}, {slop_ns}, {queue_size}")
        self.slop_ns = slop_ns
        self._queues: list[deque[tuple[int, Any]]] = [
            deque(maxlen=queue_size) for _ in range(num_topics)]
        self._callbacks: list[Callable[..., None]] = []
        self._lock = threading.Lock()

    def registerCallback(self, callback: Callable[..., None]) -> None:  # noqa: N802 - m_f's name
        """Call `callback(*messages)` with each matched set (message_filters' interface)."""
        self._callbacks.append(callback)

    def add(self, topic: int, stamp_ns: int, msg: Any) -> None:
        """Queue `msg` of topic `topic` stamped `stamp_ns`; run the callbacks on a match."""
        with self._lock:
            self._queues[topic].append((stamp_ns, msg))
            matched = self._match()
        if matched is not None:
            for callback in self._callbacks:
                callback(*matched)

    def _match(self) -> tuple[Any, ...] | None:
        pivots, others = self._queues[0], self._queues[1:]
        for index in range(len(pivots) - 1, -1, -1):     # newest pivot first
            stamp, pivot = pivots[index]
            chosen = []
            for queue in others:
                near = [(abs(s - stamp), i) for i, (s, _) in enumerate(queue)
                        if abs(s - stamp) <= self.slop_ns]
                if not near:
                    break
                chosen.append(min(near)[1])
            else:
                messages = (pivot, *(queue[i][1] for queue, i in zip(others, chosen)))
                for _ in range(index + 1):
                    pivots.popleft()
                for queue, i in zip(others, chosen):
                    for _ in range(i + 1):
                        queue.popleft()
                return messages
        return None


def make_synchronizer(node: Any, topics: Sequence[tuple[type, str, Any]], slop_s: float,
                      callback: Callable[..., None], queue_size: int = 10) -> list[Any]:
    """Subscribe to `topics` [(type, name, qos)] and call `callback(*msgs)` per matched set.

    Uses message_filters' ApproximateTimeSynchronizer when it imports, else `ApproximateSync`.
    Returns the subscriptions (destroy them with `node.destroy_subscription`). Every message
    type must have a `header`.
    """
    if message_filters is not None:
        subscribers = [message_filters.Subscriber(node, kind, name, qos_profile=qos)
                       for kind, name, qos in topics]
        sync = message_filters.ApproximateTimeSynchronizer(subscribers, queue_size, slop_s)
        sync.registerCallback(callback)
        return [subscriber.sub for subscriber in subscribers]
    sync = ApproximateSync(len(topics), round(slop_s * 1e9), queue_size)
    sync.registerCallback(callback)

    def feed(topic: int) -> Callable[[Any], None]:
        return lambda msg: sync.add(topic, stamp_ns(msg.header.stamp), msg)
    return [node.create_subscription(kind, name, feed(i), qos)
            for i, (kind, name, qos) in enumerate(topics)]
