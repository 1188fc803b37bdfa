"""Time, injected. Durations come from the monotonic clock, because a Pi without a real-time clock
steps its wall clock when NTP first answers; event timestamps are that monotonic instant mapped to
wall time at the moment the event is built."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Monotonic seconds."""
        ...

    def wall(self, mono: float) -> float:
        """Unix seconds of a monotonic instant."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.monotonic()

    def wall(self, mono: float) -> float:
        return mono + (time.time() - time.monotonic())


class ManualClock:
    """A clock tests move by hand, so dwell and exit timing run instantly."""

    def __init__(self, start: float = 1000.0, wall_offset: float = 1_790_000_000.0) -> None:
        self.t = start
        self.wall_offset = wall_offset

    def now(self) -> float:
        return self.t

    def wall(self, mono: float) -> float:
        return mono + self.wall_offset

    def advance(self, seconds: float) -> None:
        self.t += seconds
