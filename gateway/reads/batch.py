"""Reads as the pipeline sees them: batches of parallel numpy arrays.

Card readers hand over one read at a time (``ReadCollector.add``), a UHF reader everything one
port read decoded at once (written into the collector's columns by a kernel,
``gateway.reads.intern``); the pipeline drains the collector into a
``ReadBatch`` and feeds whole batches to the stages, because a numba kernel pays a few
microseconds per call and almost nothing per read. Raw identifiers (EPCs, card numbers) are
interned to small integers once, here, so that no stage ever touches a string on the hot path.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Final

import numpy as np
from numpy.typing import NDArray

NO_RSSI: Final = float("nan")


class SubjectKind(enum.IntEnum):
    CUSTOMER = 0
    ITEM = 1


@dataclass(slots=True)
class Subjects:
    """Interns raw ids (uppercase hex) to dense integer ids, remembering each one's kind.

    Ids of forgotten subjects (``release``: the presence stage forgets a subject that has been
    gone long enough) are handed to new raw ids, so ids stay dense and the state indexed by them
    stays as large as the subjects seen recently, not all ever seen. Whoever keeps something per
    id registers with ``on_release`` and drops it there, before the id can be reused.
    """

    _index: dict[str, int] = field(default_factory=dict)
    raw_ids: list[str] = field(default_factory=list)  # "" where an id is free
    kinds: list[SubjectKind] = field(default_factory=list)
    _free: list[int] = field(default_factory=list)
    _listeners: list[Callable[[Collection[int]], None]] = field(default_factory=list)

    def intern(self, raw_id: str, kind: SubjectKind) -> int:
        idx = self._index.get(raw_id)
        if idx is None:
            idx = self._new_id(raw_id, kind)
            self._index[raw_id] = idx
        return idx

    def _new_id(self, raw_id: str, kind: SubjectKind) -> int:
        if self._free:
            idx = self._free.pop()
            self.raw_ids[idx], self.kinds[idx] = raw_id, kind
            return idx
        self.raw_ids.append(raw_id)
        self.kinds.append(kind)
        return len(self.raw_ids) - 1

    def on_release(self, listener: Callable[[Collection[int]], None]) -> None:
        """``listener(ids)`` is called with every batch of released ids, before any is reused."""
        self._listeners.append(listener)

    def release(self, ids: Collection[int]) -> None:
        """Forget these subjects; a raw id seen again afterwards is a new subject."""
        gone = {i for i in ids if self.raw_ids[i]}
        if not gone:
            return
        for listener in self._listeners:
            listener(gone)
        for i in sorted(gone, reverse=True):  # the lowest id is reused first: ids stay dense
            del self._index[self.raw_ids[i]]
            self.raw_ids[i] = ""
        self._free = sorted({*self._free, *gone}, reverse=True)

    def __len__(self) -> int:
        """Subjects known now (released ids not counted)."""
        return len(self._index)


@dataclass(frozen=True, slots=True)
class ReadBatch:
    """One batch of reads, oldest first. All arrays have the same length."""

    t: NDArray[np.float64]  # seconds on the daemon's monotonic clock, when the read arrived
    subject: NDArray[np.int32]  # index into Subjects
    zone: NDArray[np.int32]  # index into the zone table
    rssi: NDArray[np.float32]  # dBm; NaN where the device reports none
    device: NDArray[np.int32]  # index of the reader in the config
    antenna: NDArray[np.int16]  # antenna port on that reader; 0 for single-antenna readers

    def __len__(self) -> int:
        return int(self.t.shape[0])

    @classmethod
    def empty(cls) -> ReadBatch:
        return _columns(0)

    def in_time_order(self) -> ReadBatch:
        t = self.t
        if bool(np.all(t[1:] >= t[:-1])):
            return self
        order = np.argsort(t, kind="stable")
        return ReadBatch(
            t[order], self.subject[order], self.zone[order], self.rssi[order],
            self.device[order], self.antenna[order],
        )  # fmt: skip

    @classmethod
    def from_columns(
        cls,
        t: list[float],
        subject: list[int],
        zone: list[int],
        rssi: list[float],
        device: list[int],
        antenna: list[int],
    ) -> ReadBatch:
        return cls(
            t=np.asarray(t, np.float64),
            subject=np.asarray(subject, np.int32),
            zone=np.asarray(zone, np.int32),
            rssi=np.asarray(rssi, np.float32),
            device=np.asarray(device, np.int32),
            antenna=np.asarray(antenna, np.int16),
        )


class ReadCollector:
    """Accumulates reads between pipeline runs in columns that grow as needed, so that a port
    read's reads are written straight into them by a kernel (``room``, then ``took``) and a
    card reader's one at a time (``add``). Single-threaded: the event loop owns it."""

    def __init__(self, capacity: int = 1024) -> None:
        self._cols = _columns(capacity)
        self._n = 0

    def add(
        self, t: float, subject: int, zone: int, rssi: float, device: int, antenna: int
    ) -> None:
        c, n = self.room(1), self._n
        c.t[n], c.subject[n], c.zone[n] = t, subject, zone
        c.rssi[n], c.device[n], c.antenna[n] = rssi, device, antenna
        self._n = n + 1

    def room(self, rows: int) -> ReadBatch:
        """The columns, with room for ``rows`` more after the ``len(self)`` held: write them
        there, then say how many (``took``)."""
        need = self._n + rows
        capacity = len(self._cols)
        if need > capacity:
            while capacity < need:
                capacity *= 2
            old, self._cols = self._cols, _columns(capacity)
            for name in ReadBatch.__slots__:
                getattr(self._cols, name)[: self._n] = getattr(old, name)[: self._n]
        return self._cols

    def took(self, rows: int) -> None:
        self._n += rows

    def __len__(self) -> int:
        return self._n

    def drain(self) -> ReadBatch:
        """Everything added since the last drain, oldest first (copied: the columns are
        reused). Reads of several ports read at one tick overlap in time: sorted (stable)."""
        n, self._n = self._n, 0
        if not n:
            return _NONE
        c = self._cols
        return ReadBatch(
            c.t[:n].copy(), c.subject[:n].copy(), c.zone[:n].copy(), c.rssi[:n].copy(),
            c.device[:n].copy(), c.antenna[:n].copy(),
        ).in_time_order()  # fmt: skip


def _columns(capacity: int) -> ReadBatch:
    return ReadBatch(
        t=np.empty(capacity, np.float64),
        subject=np.empty(capacity, np.int32),
        zone=np.empty(capacity, np.int32),
        rssi=np.empty(capacity, np.float32),
        device=np.empty(capacity, np.int32),
        antenna=np.empty(capacity, np.int16),
    )


_NONE: Final = ReadBatch.empty()  # what an empty drain returns (nothing reads can be written to)
