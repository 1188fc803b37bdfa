"""EPC interning in the ingest kernel (gateway.reads.intern, the reader's EpcTable and the
context's handling of new EPCs) against its plain-Python twin, on Hypothesis-drawn port reads,
releases and table growth. Runs compiled normally and as Python under NUMBA_DISABLE_JIT=1."""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.errors import FrameError
from drivers.thingmagic.batch import Scanner
from drivers.thingmagic.decoder import ResponseDecoder
from drivers.thingmagic.records import TagRead, parse_stream_message
from gateway.clock import ManualClock
from gateway.devices.base import DeviceContext
from gateway.reads.batch import ReadCollector, SubjectKind, Subjects
from gateway.reads.intern_twin import IngestTwin, Row

pytestmark = pytest.mark.kernels

ZONES = {1: 0, 2: 1, 4: 2, 16: 3}  # antennas 3 and 5..15 are mapped to no zone
LOG: list[dict[str, Any]] = json.loads(
    (Path(__file__).parents[2] / "vectors" / "thingmagic_sparkfun_logs_all_frames.json").read_text()
)


class Both:
    """The context (kernel) and the twin, each with its own subjects, fed the same."""

    def __init__(self) -> None:
        self.clock = ManualClock()
        self.subjects, self.twin_subjects = Subjects(), Subjects()
        self.collector = ReadCollector(capacity=4)
        self.ctx = DeviceContext(
            name="uhf", index=3, zones=ZONES, customer_prefixes=("C0FFEE",),
            subjects=self.subjects, collector=self.collector, clock=self.clock,
            wake=lambda: None, on_state=lambda *_: None,
        )  # fmt: skip

        def new_subject(epc: bytes) -> int:
            raw = epc.hex().upper()
            kind = SubjectKind.CUSTOMER if raw.startswith("C0FFEE") else SubjectKind.ITEM
            return self.twin_subjects.intern(raw, kind)

        self.twin = IngestTwin(ZONES, new_subject)
        self.twin_subjects.on_release(self.twin.release)

    def read(self, buf: bytes, reads: list[tuple[int, int, int, float]], span: float) -> None:
        off, n, antenna, rssi = (list(c) for c in zip(*reads, strict=True)) if reads else [[]] * 4
        self.ctx.emit_reads(
            buf, np.array(off, np.int64), np.array(n, np.int32), np.array(antenna, np.int16),
            np.array(rssi, np.float32), span,
        )  # fmt: skip
        got = self.collector.drain()
        rows: list[Row] = list(
            zip(got.t.tolist(), got.subject.tolist(), got.zone.tolist(), got.rssi.tolist(),
                got.device.tolist(), got.antenna.tolist(), strict=True)
        )  # fmt: skip
        f32 = [(t, s, z, float(np.float32(r)), d, a) for t, s, z, r, d, a in
               self.twin.ingest(buf, reads, self.clock.now(), span, 3)]  # fmt: skip
        assert _nan_equal(rows, f32)
        assert self.subjects.raw_ids == self.twin_subjects.raw_ids
        assert self.subjects.kinds == self.twin_subjects.kinds

    def release(self, ids: list[int]) -> None:
        self.subjects.release(ids)
        self.twin_subjects.release(ids)


def _nan_equal(a: list[Row], b: list[Row]) -> bool:
    def key(rows: list[Row]) -> list[tuple[Any, ...]]:
        return [tuple("nan" if isinstance(x, float) and math.isnan(x) else x for x in r)
                for r in rows]  # fmt: skip

    return key(a) == key(b)


# A pool of EPCs: lengths 0..70 bytes (Gen2 allows 62; the scan takes what a frame holds), some
# sharing prefixes, some customers'.
EPCS = st.lists(
    st.one_of(st.binary(max_size=70), st.binary(min_size=9, max_size=9).map(
        lambda b: bytes.fromhex("C0FFEE") + b)),
    min_size=1, max_size=40, unique=True,
)  # fmt: skip


@st.composite
def port_read(draw: st.DrawFn, pool: list[bytes]) -> tuple[bytes, list[Any], float]:
    picks = draw(st.lists(st.integers(0, len(pool) - 1), max_size=30))
    pad = draw(st.binary(max_size=5))  # bytes between records, as frame headers are
    buf, reads = b"", []
    for p in picks:
        buf += pad
        antenna = draw(st.sampled_from([1, 2, 3, 4, 5, 16]))
        rssi = draw(st.sampled_from([-50.0, -71.0, math.nan]))
        reads.append((len(buf), len(pool[p]), antenna, rssi))
        buf += pool[p]
    buf += pad
    return buf, reads, draw(st.sampled_from([0.0, 0.05, 0.2]))


@st.composite
def scripts(draw: st.DrawFn) -> list[tuple[str, Any]]:
    pool = draw(EPCS)
    return draw(st.lists(st.one_of(
        port_read(pool).map(lambda r: ("read", r)),
        st.lists(st.integers(0, 60), max_size=8).map(lambda ids: ("release", ids)),
    ), max_size=25))  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(scripts())
def test_ingest_matches_twin(script: list[tuple[str, Any]]) -> None:
    both = Both()
    for kind, arg in script:
        both.clock.t += 0.05
        if kind == "read":
            both.read(*arg)
        else:
            known = [i for i in arg if i < len(both.subjects.raw_ids)]
            both.release(known)


def test_table_grows_and_rebuilds_past_many_epcs() -> None:
    both = Both()
    epcs = [n.to_bytes(12, "big") for n in range(3000)]
    for start in range(0, 3000, 500):
        chunk = epcs[start : start + 500]
        buf = b"".join(chunk)
        both.read(buf, [(12 * i, 12, 1, -60.0) for i in range(len(chunk))], 0.0)
    assert len(both.subjects) == 3000
    both.release(list(range(0, 3000, 2)))
    buf = b"".join(epcs[:100])
    both.read(buf, [(12 * i, 12, 2, -60.0) for i in range(100)], 0.0)  # half new again
    assert len(both.subjects) == 1550


def test_epcs_that_are_prefixes_of_one_another_are_different_subjects() -> None:
    both = Both()
    whole = bytes(range(1, 41))
    epcs = [whole[:n] for n in range(40, -1, -1)]  # the longest first; the empty EPC too
    buf = b"".join(epcs)
    offsets = np.cumsum([0, *map(len, epcs[:-1])]).tolist()
    both.read(buf, [(o, len(e), 1, -60.0) for o, e in zip(offsets, epcs, strict=True)], 0.0)
    both.read(buf, [(o, len(e), 2, -60.0) for o, e in zip(offsets, epcs, strict=True)], 0.0)
    assert len(both.subjects) == 41


def test_sparkfun_log_interns_as_the_frame_parser_reads() -> None:
    """Real frames of an M6e Nano: scan + ingest give each read the subject of its EPC as the
    per-frame parser decodes it."""
    received = b"".join(bytes.fromhex(f["hex"]) for f in LOG if f["dir"] == "Received")
    both = Both()
    found = Scanner().scan(received)
    reads = [
        (int(o), int(n), 1, float(r))
        for o, n, r in zip(found.epc_off, found.epc_len, found.rssi, strict=True)
    ]
    both.read(received, reads, 0.0)
    decoder = ResponseDecoder(max_size=len(received) + 1)
    decoder.receive_data(received)
    epcs = []
    for frame in decoder.frames():
        with contextlib.suppress(FrameError):
            message = parse_stream_message(frame)
            if isinstance(message, TagRead) and frame.status == 0:
                epcs.append(message.epc.hex().upper())
    assert len(epcs) == len(reads) > 100
    assert both.subjects.raw_ids == list(dict.fromkeys(epcs))
