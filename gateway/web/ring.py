"""The reads of the last minute, for the live page's RSSI histograms and tuning view.

Filled from the pipeline's tap (``Pipeline.tap``: each run's batch, one numpy copy per run, never
per read) only while armed: a watcher arms it for a few seconds at a time, and the first run
after that lapses takes the tap off again, so the pipeline pays nothing once nobody watches. The
ring is a fixed block of ``CAPACITY`` rows: at a heavier load than that in a minute the window is
shorter, never the memory larger.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

import numpy as np
from numpy.typing import NDArray

from gateway.reads.batch import ReadBatch

CAPACITY: Final = 1 << 17  # rows: 160 s of the store load's 800 reads/s; 3.5 MB


class Tapped(Protocol):
    """Where the reads pass (``Pipeline``): its ``tap`` sees each run's batch when set."""

    tap: Callable[[ReadBatch], None] | None


@dataclass(frozen=True, slots=True)
class Window:
    """Reads of one time window, oldest first, as parallel arrays."""

    t: NDArray[np.float64]
    subject: NDArray[np.int32]
    rssi: NDArray[np.float32]
    device: NDArray[np.int32]
    antenna: NDArray[np.int16]


_EMPTY: Final = Window(
    np.empty(0, np.float64), np.empty(0, np.int32), np.empty(0, np.float32),
    np.empty(0, np.int32), np.empty(0, np.int16),
)  # fmt: skip


class ReadRing:
    def __init__(self, pipeline: Tapped, capacity: int = CAPACITY) -> None:
        self._pipeline = pipeline
        self._capacity = capacity
        self._columns: Window | None = None  # allocated on the first arming
        self._end = 0  # rows ever written; the next row goes to _end % capacity
        self._armed_until = -np.inf

    @property
    def armed(self) -> bool:
        return self._pipeline.tap is not None

    def arm(self, until: float) -> None:
        """Keep filling until the daemon's clock reaches ``until``."""
        self._armed_until = max(self._armed_until, until)
        if self._columns is None:
            n = self._capacity
            self._columns = Window(
                np.zeros(n, np.float64), np.zeros(n, np.int32), np.zeros(n, np.float32),
                np.zeros(n, np.int32), np.zeros(n, np.int16),
            )  # fmt: skip
        self._pipeline.tap = self._take

    def _take(self, batch: ReadBatch) -> None:
        n = len(batch)
        if n and batch.t[-1] > self._armed_until:
            self._pipeline.tap = None  # nobody watches any more
            return
        columns = self._columns
        if columns is None or not n:
            return
        if n > self._capacity:
            batch = _tail(batch, self._capacity)
            n = self._capacity
        rows = (self._end + np.arange(n)) % self._capacity
        columns.t[rows] = batch.t
        columns.subject[rows] = batch.subject
        columns.rssi[rows] = batch.rssi
        columns.device[rows] = batch.device
        columns.antenna[rows] = batch.antenna
        self._end += n

    def since(self, t: float) -> Window:
        """Reads at or after ``t`` still held, oldest first."""
        columns = self._columns
        held = min(self._end, self._capacity)
        if columns is None or not held:
            return _EMPTY
        rows = (self._end - held + np.arange(held)) % self._capacity
        keep = rows[columns.t[rows] >= t]
        return Window(
            columns.t[keep], columns.subject[keep], columns.rssi[keep],
            columns.device[keep], columns.antenna[keep],
        )  # fmt: skip


def _tail(batch: ReadBatch, n: int) -> ReadBatch:
    return ReadBatch(
        batch.t[-n:], batch.subject[-n:], batch.zone[-n:], batch.rssi[-n:],
        batch.device[-n:], batch.antenna[-n:],
    )  # fmt: skip
