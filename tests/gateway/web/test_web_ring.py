"""The live page's ring of reads: filled only while armed, bounded, a window by time."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from gateway.reads.batch import ReadBatch
from gateway.web.ring import ReadRing


class Pipe:
    tap: Callable[[ReadBatch], None] | None = None

    def run(self, t: list[float], subject: list[int]) -> None:
        """One pipeline run: the tap sees its batch when set, as ``Pipeline._process`` does."""
        batch = ReadBatch.from_columns(t, subject, [0] * len(t), [-50.0] * len(t),
                                       [0] * len(t), [1] * len(t))  # fmt: skip
        if self.tap is not None:
            self.tap(batch)


def test_nothing_is_tapped_until_armed_and_the_tap_goes_when_the_arming_lapses() -> None:
    pipe = Pipe()
    ring = ReadRing(pipe, capacity=8)
    pipe.run([0.0], [1])
    assert pipe.tap is None
    assert len(ring.since(-1.0).t) == 0
    ring.arm(until=10.0)
    assert ring.armed
    pipe.run([1.0, 2.0], [2, 3])
    assert ring.since(0.0).subject.tolist() == [2, 3]
    pipe.run([11.0], [4])  # past the arming: not kept, and the tap is taken off
    assert pipe.tap is None
    assert not ring.armed
    assert ring.since(0.0).subject.tolist() == [2, 3]


def test_the_ring_keeps_the_newest_reads_within_its_capacity() -> None:
    pipe = Pipe()
    ring = ReadRing(pipe, capacity=4)
    ring.arm(until=100.0)
    pipe.run([1.0, 2.0, 3.0], [1, 2, 3])
    pipe.run([4.0, 5.0, 6.0], [4, 5, 6])
    window = ring.since(0.0)
    assert window.subject.tolist() == [3, 4, 5, 6]
    assert np.all(np.diff(window.t) > 0)
    assert ring.since(4.5).subject.tolist() == [5, 6]
    pipe.run([float(t) for t in range(7, 17)], list(range(7, 17)))  # more than it holds at once
    assert ring.since(0.0).subject.tolist() == [13, 14, 15, 16]
