"""``GarbageWatch`` on its own: decoder counters moved by hand, a clock moved by hand."""

from __future__ import annotations

from drivers.buffer import DecoderStats
from gateway.clock import ManualClock
from gateway.devices.base import DeviceContext
from gateway.devices.garbage import GarbageWatch
from gateway.health import DeviceState
from gateway.reads.batch import ReadCollector, Subjects


class Line:
    def __init__(self) -> None:
        self.clock = ManualClock()
        self.states: list[tuple[DeviceState, str | None]] = []
        self.ctx = DeviceContext(
            name="r", index=0, zones={0: 0}, customer_prefixes=(), subjects=Subjects(),
            collector=ReadCollector(), clock=self.clock, wake=lambda: None,
            on_state=lambda _n, state, detail: self.states.append((state, detail)),
        )  # fmt: skip
        self.ctx.set_state(DeviceState.OK, "listening")
        self.stats = DecoderStats()
        self.watch = GarbageWatch(self.ctx, self.stats, window_s=10.0)

    def garbage(self, nbytes: int, after_s: float = 1.0) -> None:
        self.clock.advance(after_s)
        self.stats.discarded_bytes += nbytes
        self.watch.after_chunk()

    def frame(self) -> None:
        self.stats.frames += 1
        self.watch.after_chunk()


def test_ten_seconds_of_garbage_is_an_error_and_a_frame_ends_it() -> None:
    line = Line()
    line.garbage(5, after_s=0)
    for _ in range(9):
        line.garbage(5)
    assert line.ctx.state == DeviceState.OK  # 9 s so far
    line.garbage(5)
    line.garbage(5)  # no new state for more of the same
    line.frame()
    assert line.states == [
        (DeviceState.OK, "listening"),
        (DeviceState.ERROR, "no valid frame in 10 s (55 bytes of garbage)"),
        (DeviceState.OK, "listening"),
    ]


def test_stray_bytes_with_quiet_between_are_no_error() -> None:
    line = Line()
    for _ in range(100):
        line.garbage(1, after_s=3600)  # a glitch an hour, while no card comes near
    assert line.states == [(DeviceState.OK, "listening")]


def test_a_part_of_a_frame_is_not_garbage() -> None:
    line = Line()
    for _ in range(30):
        line.clock.advance(1.0)
        line.watch.after_chunk()  # bytes buffered, nothing dropped, no frame yet
    assert line.ctx.state == DeviceState.OK


def test_a_frame_does_not_undo_an_error_the_session_set_itself() -> None:
    line = Line()
    for _ in range(11):
        line.garbage(5)
    line.ctx.set_state(DeviceState.ERROR, "high return loss on antenna 1")
    line.frame()
    assert line.ctx.detail == "high return loss on antenna 1"
