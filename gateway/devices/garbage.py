"""Noticing a reader that sends bytes but never a frame.

A reader on the wrong baud rate, a loose ground or a cable picking up a motor delivers bytes
that make no frame. The decoders drop and count them (``DecoderStats.discarded_bytes``), but a
session that only listens, or one whose link watchdog is fed by any byte, would go on
reporting ``ok``. ``GarbageWatch`` reads the decoder's counters after each chunk from the port:
a new valid frame clears it; garbage arriving for ``window_s`` with no valid frame (a spell of
it, which a quiet pause as long as the window ends) puts the device in ``error``, saying how
many bytes were dropped; the next valid frame puts back the state it had before.

It sits on the hot path of every read, so a chunk costs two integer comparisons; the clock is
read only for a chunk that dropped bytes without completing a frame, and the state changes only
when the verdict does.
"""

from __future__ import annotations

from drivers.buffer import DecoderStats
from gateway.devices.base import DeviceContext
from gateway.health import DeviceState


class GarbageWatch:
    def __init__(self, ctx: DeviceContext, stats: DecoderStats, window_s: float) -> None:
        self._ctx = ctx
        self._stats = stats
        self._window_s = window_s
        self._frames = stats.frames
        self._seen = stats.discarded_bytes  # dropped bytes counted so far
        self._spell: tuple[float, int] | None = None  # garbage since (time, bytes dropped then)
        self._last = 0.0  # time of the latest chunk of garbage
        self._before: tuple[DeviceState, str | None] | None = None  # the state error replaced
        self._detail = ""

    def after_chunk(self) -> None:
        stats = self._stats
        if stats.frames != self._frames:
            self._frames, self._seen, self._spell = stats.frames, stats.discarded_bytes, None
            if self._before is not None:
                self._recover()
        elif stats.discarded_bytes != self._seen:
            self._garbage(self._ctx.now(), stats.discarded_bytes)

    def _garbage(self, now: float, discarded: int) -> None:
        if self._spell is None or now - self._last >= self._window_s:
            self._spell = (now, self._seen)
        self._seen, self._last = discarded, now
        since, at_start = self._spell
        if self._before is None and now - since >= self._window_s:
            self._before = (self._ctx.state, self._ctx.detail)
            self._detail = (
                f"no valid frame in {self._window_s:g} s ({discarded - at_start} bytes of garbage)"
            )
            self._ctx.set_state(DeviceState.ERROR, self._detail)

    def _recover(self) -> None:
        before, self._before = self._before, None
        # Something else may have changed the state meanwhile (a reader warning): that stands.
        if before is not None and (self._ctx.state, self._ctx.detail) == (
            DeviceState.ERROR,
            self._detail,
        ):
            self._ctx.set_state(*before)
