"""Plain-Python twin of ``gateway.reads.intern.ingest``: the same rows, from a dict
keyed by the EPC's bytes, as one would write it without numba. The tests hold the kernel, its
table and the context's handling of new EPCs to it
(``tests/gateway/reads/test_intern.py``)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

Row = tuple[float, int, int, float, int, int]  # t, subject, zone, rssi, device, antenna


@dataclass(slots=True)
class IngestTwin:
    zones: Mapping[int, int]  # antenna -> zone
    new_subject: Callable[[bytes], int]  # interns an EPC seen for the first time
    known: dict[bytes, int] = field(default_factory=dict)

    def ingest(
        self,
        buf: bytes,
        reads: list[tuple[int, int, int, float]],  # EPC offset and length, antenna, RSSI
        now: float,
        span: float,
        device: int,
    ) -> list[Row]:
        rows = []
        for off, n, antenna, rssi in reads:
            zone = self.zones.get(antenna)
            if zone is None:
                continue
            epc = buf[off : off + n]
            subject = self.known.get(epc)
            if subject is None:
                subject = self.known[epc] = self.new_subject(epc)
            age = span * (1.0 - (off + n) / len(buf)) if span > 0 and buf else 0.0
            t = now - min(max(age, 0.0), span)
            rows.append((t, subject, zone, rssi, device, antenna))
        return rows

    def release(self, ids: Collection[int]) -> None:
        self.known = {epc: i for epc, i in self.known.items() if i not in ids}
