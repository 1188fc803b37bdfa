"""Time, injected. Durations come from the monotonic clock, because a Pi without a real-time clock
steps its wall clock when NTP first answers; event timestamps are that monotonic instant mapped to
wall time at the moment the event is built."""

from __future__ import annotations

import asyncio
import math
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


def on_grid(t: float, step_s: float) -> float:
    """The first point of the time grid of ``step_s`` (multiples of it) at or after ``t``."""
    return math.ceil(t / step_s - 1e-9) * step_s


def second_grid(tick_s: float) -> float:
    """The step of the grid for the daemon's once-a-second timers: the whole number of ticks
    nearest a second (13 ticks of 80 ms: 1.04 s).

    A wakeup costs more than most of what a timer does. Timers that need not fire at an exact
    moment (housekeeping, watchdogs, silence checks) wait for points of this grid: every part
    computes the same points from the same tick, asyncio runs the timers due at one point in
    one turn, and each point is also a tick of the pipeline, which a busy loop wakes for
    anyway."""
    return tick_s * max(1, round(1.0 / tick_s))


async def sleep_on_grid(seconds: float, step_s: float) -> None:
    """Sleep at least ``seconds`` of loop time, waking on the grid of ``step_s``."""
    loop = asyncio.get_running_loop()
    await asyncio.sleep(on_grid(loop.time() + seconds, step_s) - loop.time())
