"""Reads as the pipeline sees them: batches of parallel numpy arrays.

Card readers hand over one read at a time (``ReadCollector.add``), a UHF reader everything one
port read decoded at once (``add_many``, columns); the pipeline drains the collector into a
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
        return cls(
            t=np.empty(0, np.float64),
            subject=np.empty(0, np.int32),
            zone=np.empty(0, np.int32),
            rssi=np.empty(0, np.float32),
            device=np.empty(0, np.int32),
            antenna=np.empty(0, np.int16),
        )

    @classmethod
    def concat(cls, batches: list[ReadBatch]) -> ReadBatch:
        return cls(
            t=np.concatenate([b.t for b in batches]),
            subject=np.concatenate([b.subject for b in batches]),
            zone=np.concatenate([b.zone for b in batches]),
            rssi=np.concatenate([b.rssi for b in batches]),
            device=np.concatenate([b.device for b in batches]),
            antenna=np.concatenate([b.antenna for b in batches]),
        )

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


@dataclass(slots=True)
class ReadCollector:
    """Accumulates reads between pipeline runs. Single-threaded: the event loop owns it.

    Single reads go to lists; bulk reads stay numpy chunks. Before a chunk is added the pending
    single reads are sealed into a chunk of their own, so ``drain`` keeps arrival order."""

    _t: list[float] = field(default_factory=list)
    _subject: list[int] = field(default_factory=list)
    _zone: list[int] = field(default_factory=list)
    _rssi: list[float] = field(default_factory=list)
    _device: list[int] = field(default_factory=list)
    _antenna: list[int] = field(default_factory=list)
    _chunks: list[ReadBatch | _Bulk] = field(default_factory=list)
    _chunked: int = 0

    def add(
        self, t: float, subject: int, zone: int, rssi: float, device: int, antenna: int
    ) -> None:
        self._t.append(t)
        self._subject.append(subject)
        self._zone.append(zone)
        self._rssi.append(rssi)
        self._device.append(device)
        self._antenna.append(antenna)

    def add_many(
        self,
        t: float,
        subject: NDArray[np.int32],
        zone: NDArray[np.int32],
        rssi: NDArray[np.float32],
        device: int,
        antenna: NDArray[np.int16],
        ages: NDArray[np.float64] | None = None,
    ) -> None:
        """Reads that arrived together (one port read): one device, columns (copied: the caller
        may reuse its arrays); each read's time is ``t``, less its age where ``ages`` are given
        (reads that waited in a port's buffer since its last read)."""
        n = int(subject.shape[0])
        if not n:
            return
        self._seal()
        # t and device stay scalars until drain: per call, only the columns are copied.
        times: float | NDArray[np.float64] = t if ages is None else t - ages
        columns = subject.copy(), zone.copy(), rssi.copy(), antenna.copy()
        self._chunks.append((times, device, *columns))
        self._chunked += n

    def __len__(self) -> int:
        return len(self._t) + self._chunked

    def _seal(self) -> None:
        if self._t:
            self._chunks.append(
                ReadBatch.from_columns(
                    self._t, self._subject, self._zone, self._rssi, self._device, self._antenna
                )
            )
            self._chunked += len(self._t)
            self._t, self._subject, self._zone = [], [], []
            self._rssi, self._device, self._antenna = [], [], []

    def drain(self) -> ReadBatch:
        """Everything added since the last drain, oldest first."""
        self._seal()
        chunks, self._chunks, self._chunked = self._chunks, [], 0
        batches = [c if isinstance(c, ReadBatch) else _expand(c) for c in chunks]
        if len(batches) <= 1:
            return batches[0] if batches else ReadBatch.empty()
        # Chunks of several ports read at one tick overlap in time: sorted (stable) into one.
        return ReadBatch.concat(batches).in_time_order()


# One add_many call: t (one for all, or a column), device, then subject, zone, rssi, antenna.
_Bulk = tuple[
    float | NDArray[np.float64], int, NDArray[np.int32], NDArray[np.int32],
    NDArray[np.float32], NDArray[np.int16],
]  # fmt: skip


def _expand(bulk: _Bulk) -> ReadBatch:
    t, device, subject, zone, rssi, antenna = bulk
    n = subject.shape[0]
    return ReadBatch(
        t=t if isinstance(t, np.ndarray) else np.full(n, t, np.float64),
        subject=subject.astype(np.int32, copy=False),
        zone=zone.astype(np.int32, copy=False),
        rssi=rssi.astype(np.float32, copy=False),
        device=np.full(n, device, np.int32),
        antenna=antenna.astype(np.int16, copy=False),
    )
