"""What a device session is given (``DeviceContext``) and what it must provide (``Session``).

The context hides the pipeline from the session: a session reports "this reader saw this id on
this antenna at this strength" and the context stamps the time, maps the antenna to its zone,
decides whether the id is a customer or an item, interns it and wakes the pipeline. A UHF
session hands over everything one port read decoded in one call (``emit_reads``; a streaming
ThingMagic port its raw bytes, ``emit_stream``, which frames them in the same kernel call): one
kernel call (``gateway.reads.intern.ingest``) looks each EPC up in the reader's table
by its bytes, maps its antenna to a zone, times it and writes it into the pipeline's read
columns; Python runs only for an EPC seen for the first time (interned, and added to the table),
so a tag read a thousand times costs one hex conversion. Streaming sessions read their ports on
the pipeline's tick (``tick``, ``gateway.devices.tick``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from drivers.thingmagic.batch import CRC_TABLE, Scanner, capacity_for
from gateway.clock import Clock
from gateway.devices.tick import Tick
from gateway.health import Health, StateListener
from gateway.reads.batch import ReadBatch, ReadCollector, SubjectKind, Subjects
from gateway.reads.epc_table import EpcTable
from gateway.reads.intern import ingest
from gateway.reads.stream import scan_ingest

log = logging.getLogger(__name__)


class Session(Protocol):
    async def run(self, ctx: DeviceContext) -> None:
        """Open, initialise and stream until cancelled; raise to be restarted with backoff."""
        ...


class DeviceContext(Health):
    def __init__(
        self,
        *,
        name: str,
        index: int,
        zones: dict[int, int],
        customer_prefixes: tuple[str, ...],
        subjects: Subjects,
        collector: ReadCollector,
        clock: Clock,
        wake: Callable[[], None],
        on_state: StateListener,
        tick: Tick | None = None,
    ) -> None:
        """``tick``: the pipeline's (``Pipeline.tick``); by default one that drives itself."""
        self.name = name
        self.index = index
        self.log = logging.getLogger(f"gateway.devices.{name}")
        super().__init__(name, self.log, on_state)
        self._zones = zones
        self._prefixes = customer_prefixes
        self._subjects = subjects
        self._collector = collector
        self._clock = clock
        self._wake = wake
        self.tick = tick or Tick()
        self.reads = 0
        self.unmapped_reads = 0
        self._epcs = EpcTable()  # this reader's EPCs -> subject ids
        subjects.on_release(self._epcs.release)  # a released id will name another EPC
        self._missing = np.empty(64, np.int64)  # ingest's scratch: reads of EPCs not yet known
        # antenna -> zone index, -1 where the config maps none (ports 0..16 at least)
        self._zone_of = np.full(max(17, max(zones, default=0) + 1), -1, np.int32)
        for antenna, zone in zones.items():
            self._zone_of[antenna] = zone
        self._antenna_reads = np.zeros(len(self._zone_of), np.int64)  # mapped reads per port

    def emit_read(
        self, raw_id: str, antenna: int, rssi: float = math.nan, kind: SubjectKind | None = None
    ) -> None:
        """One read of ``raw_id`` (uppercase hex). ``kind=None`` classifies a UHF EPC by the
        configured customer prefixes; card readers pass CUSTOMER."""
        zone = self._zones.get(antenna)
        if zone is None:  # an antenna the config does not map: counted, not a zone of its own
            self.unmapped_reads += 1
            return
        if kind is None:
            is_customer = raw_id.startswith(self._prefixes) if self._prefixes else False
            kind = SubjectKind.CUSTOMER if is_customer else SubjectKind.ITEM
        subject = self._subjects.intern(raw_id, kind)
        self._collector.add(self._clock.now(), subject, zone, rssi, self.index, antenna)
        self.reads += 1
        self._antenna_reads[antenna] += 1
        self._wake()

    def emit_reads(
        self,
        buf: bytes,
        epc_off: NDArray[np.int64],
        epc_len: NDArray[np.int32],
        antennas: NDArray[np.int16],
        rssi: NDArray[np.float32],
        span_s: float = 0.0,
    ) -> None:
        """Reads that one port read brought: each EPC at ``buf[off:off + len]``, with parallel
        antenna (TX port) and RSSI (dBm, NaN for none) columns; their bytes came at an even
        pace over the last ``span_s`` seconds. Classified like ``emit_read`` with
        ``kind=None``; reads on antennas the config does not map are counted, never interned."""
        n = int(epc_off.shape[0])
        if not n:
            return
        data = np.frombuffer(buf, np.uint8)
        at, cols = self._room(n)
        rows, lost = ingest(
            data, epc_off, epc_len, antennas, rssi, self._clock.now(), float(span_s), self.index,
            *self._epcs.arrays(), self._zone_of, self._antenna_reads, cols.t, cols.subject,
            cols.zone, cols.rssi, cols.device, cols.antenna, at, self._missing,
        )  # fmt: skip
        self._took(data, epc_off, epc_len, cols.subject[at : at + rows], n, lost)

    def emit_stream(
        self, buf: bytes, scanner: Scanner, counters: NDArray[np.int64], span_s: float
    ) -> tuple[int, int, int]:
        """A ThingMagic port read whole: framed by the stream scan into ``scanner``'s columns
        (its counters added to ``counters``) and its tag reads taken as ``emit_reads`` takes
        them, in one kernel call (``gateway.reads.stream``). Returns the scan's (bytes
        consumed, tag reads, other frames: ``Scanner.others``)."""
        cols = scanner.columns(len(buf))
        data = np.frombuffer(buf, np.uint8)
        at, out = self._room(capacity_for(len(buf)))
        consumed, n, others, rows, lost = scan_ingest(
            data, CRC_TABLE, *cols, counters, self._clock.now(), float(span_s), self.index,
            *self._epcs.arrays(), self._zone_of, self._antenna_reads, out.t, out.subject,
            out.zone, out.rssi, out.device, out.antenna, at, self._missing,
        )  # fmt: skip
        self._took(data, cols[0], cols[1], out.subject[at : at + rows], n, lost)
        return consumed, n, others

    def _room(self, reads: int) -> tuple[int, ReadBatch]:
        """Room for ``reads`` more in the collector's columns and in ingest's scratch: the row
        they start at, and the columns."""
        if self._missing.shape[0] < reads:
            self._missing = np.empty(max(reads, 2 * self._missing.shape[0]), np.int64)
        return len(self._collector), self._collector.room(reads)

    def _took(
        self,
        data: NDArray[np.uint8],
        epc_off: NDArray[np.int64],
        epc_len: NDArray[np.int32],
        subjects: NDArray[np.int32],
        reads: int,
        lost: int,
    ) -> None:
        """After ingest wrote ``subjects`` (its rows) of ``reads`` reads: the new EPCs
        interned, the rows handed to the collector, the rest counted as unmapped."""
        if lost:
            self._intern_new(data, epc_off, epc_len, subjects, lost)
        rows = len(subjects)
        self._collector.took(rows)
        self.unmapped_reads += reads - rows
        if rows:
            self.reads += rows
            self._wake()

    def _intern_new(
        self,
        data: NDArray[np.uint8],
        epc_off: NDArray[np.int64],
        epc_len: NDArray[np.int32],
        subjects: NDArray[np.int32],
        lost: int,
    ) -> None:
        """The reads ``ingest`` found no subject for (new EPCs): interned, and the table told."""
        rows = np.flatnonzero(subjects < 0).tolist()
        for row, i in zip(rows, self._missing[:lost].tolist(), strict=True):
            off, n = int(epc_off[i]), int(epc_len[i])
            epc = data[off : off + n].tobytes()
            raw_id = epc.hex().upper()
            is_customer = raw_id.startswith(self._prefixes) if self._prefixes else False
            kind = SubjectKind.CUSTOMER if is_customer else SubjectKind.ITEM
            subjects[row] = subject = self._subjects.intern(raw_id, kind)
            self._epcs.insert(data, off, n, subject)

    def now(self) -> float:
        """The monotonic time the context stamps reads with."""
        return self._clock.now()

    @property
    def reads_by_antenna(self) -> dict[int, int]:
        """Reads that reached the pipeline, per antenna port (0 for single-antenna readers)."""
        return {int(a): int(n) for a, n in enumerate(self._antenna_reads) if n}
