"""What a device session is given (``DeviceContext``) and what it must provide (``Session``).

The context hides the pipeline from the session: a session reports "this reader saw this id on
this antenna at this strength" and the context stamps the time, maps the antenna to its zone,
decides whether the id is a customer or an item, interns it and wakes the pipeline. A UHF
session hands over everything one port read decoded in one call (``emit_reads``): one clock
reading, the zones looked up as an array, and each EPC interned once per gateway through a dict
keyed by its bytes, so that a tag read a thousand times costs one hex conversion. Streaming
sessions read their ports on the pipeline's tick (``tick``, ``gateway.devices.tick``).
"""

from __future__ import annotations

import enum
import logging
import math
from collections.abc import Callable, Collection, Sequence
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from gateway.clock import Clock
from gateway.devices.tick import Tick
from gateway.reads import ReadCollector, SubjectKind, Subjects

log = logging.getLogger(__name__)


class DeviceState(enum.StrEnum):
    STARTING = "starting"
    OK = "ok"
    DOWN = "down"
    ERROR = "error"  # the device answers but reports a fault (e.g. antenna return loss)


class Session(Protocol):
    async def run(self, ctx: DeviceContext) -> None:
        """Open, initialise and stream until cancelled; raise to be restarted with backoff."""
        ...


StateListener = Callable[[str, DeviceState, str | None], None]


class DeviceContext:
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
        self._zones = zones
        self._prefixes = customer_prefixes
        self._subjects = subjects
        self._collector = collector
        self._clock = clock
        self._wake = wake
        self._on_state = on_state
        self.tick = tick or Tick()
        self.state = DeviceState.STARTING
        self.detail: str | None = None
        self.reads = 0
        self.unmapped_reads = 0
        self._epc_ids: dict[bytes, int] = {}
        subjects.on_release(self._forget)  # a released id will name another EPC
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
        epcs: Sequence[bytes],
        antennas: NDArray[np.int16],
        rssi: NDArray[np.float32],
        ages: NDArray[np.float64] | None = None,
    ) -> None:
        """Reads that arrived together: raw EPCs, and parallel antenna and RSSI (dBm, NaN for
        none) columns; ``ages``: how long before now each arrived (None: just now). Classified
        like ``emit_read`` with ``kind=None``."""
        if not epcs:
            return
        zones = self._zone_of[antennas]  # ports are 1..16 (the scan decodes nibble 0 as 16)
        mapped = zones >= 0
        count = int(np.count_nonzero(mapped))
        if count < len(epcs):  # antennas the config does not map: counted, never interned
            self.unmapped_reads += len(epcs) - count
            epcs = [e for e, keep in zip(epcs, mapped.tolist(), strict=True) if keep]
            zones, rssi, antennas = zones[mapped], rssi[mapped], antennas[mapped]
            ages = None if ages is None else ages[mapped]
        if not count:
            return
        known = self._epc_ids.get
        ids = [known(e, -1) for e in epcs]
        if -1 in ids:
            ids = [self._subject_of(e) if i < 0 else i for e, i in zip(epcs, ids, strict=True)]
        subjects = np.array(ids, np.int32)
        self._collector.add_many(
            self._clock.now(), subjects, zones, rssi, self.index, antennas, ages
        )
        self.reads += count
        self._antenna_reads += np.bincount(antennas, minlength=len(self._antenna_reads))
        self._wake()

    def now(self) -> float:
        """The monotonic time the context stamps reads with."""
        return self._clock.now()

    @property
    def reads_by_antenna(self) -> dict[int, int]:
        """Reads that reached the pipeline, per antenna port (0 for single-antenna readers)."""
        return {int(a): int(n) for a, n in enumerate(self._antenna_reads) if n}

    def _forget(self, ids: Collection[int]) -> None:
        self._epc_ids = {epc: i for epc, i in self._epc_ids.items() if i not in ids}

    def _subject_of(self, epc: bytes) -> int:
        subject = self._epc_ids.get(epc)
        if subject is None:
            raw_id = epc.hex().upper()
            is_customer = raw_id.startswith(self._prefixes) if self._prefixes else False
            kind = SubjectKind.CUSTOMER if is_customer else SubjectKind.ITEM
            subject = self._epc_ids[epc] = self._subjects.intern(raw_id, kind)
        return subject

    def set_state(self, state: DeviceState, detail: str | None = None) -> None:
        if state == self.state and detail == self.detail:
            return
        self.state, self.detail = state, detail
        level = logging.INFO if state == DeviceState.OK else logging.WARNING
        self.log.log(level, "%s%s", state.value, f": {detail}" if detail else "")
        self._on_state(self.name, state, detail)
