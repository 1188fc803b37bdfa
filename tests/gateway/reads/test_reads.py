"""The read collector with single and bulk reads, and the context's bulk hand-over."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from drivers.buffer import DecoderStats
from drivers.thingmagic import batch, commands
from drivers.thingmagic.records import TagRead, encode_keepalive, encode_stream_record
from gateway.clock import ManualClock
from gateway.devices.base import DeviceContext
from gateway.reads.batch import ReadBatch, ReadCollector, SubjectKind, Subjects
from tests.epcs import emit

pytestmark = pytest.mark.kernels


def test_drain_keeps_arrival_order_across_single_and_bulk_reads() -> None:
    c = ReadCollector(capacity=2)
    c.add(1.0, 7, 0, -50.0, 0, 0)
    cols = c.room(3)  # grows, keeping the read already there
    cols.t[1:3], cols.subject[1:3], cols.device[1:3] = 2.0, [1, 2], 5
    c.took(2)
    c.add(3.0, 9, 1, math.nan, 1, 0)
    assert len(c) == 4
    batch = c.drain()
    assert batch.t.tolist() == [1.0, 2.0, 2.0, 3.0]
    assert batch.subject.tolist() == [7, 1, 2, 9]
    assert batch.device.tolist() == [0, 5, 5, 1]
    assert batch.antenna.dtype == np.int16
    assert len(c) == 0
    assert len(c.drain()) == 0


def test_drain_sorts_reads_of_several_ports_by_time() -> None:
    c = ReadCollector()
    for t, subject in [(2.0, 1), (3.0, 2), (1.0, 3), (2.0, 4)]:
        c.add(t, subject, 0, -50.0, 0, 0)
    assert c.drain().subject.tolist() == [3, 1, 4, 2]


def context(subjects: Subjects, collector: ReadCollector, wakes: list[int]) -> DeviceContext:
    return DeviceContext(
        name="door", index=1, zones={1: 0, 2: 3}, customer_prefixes=("C0FFEE",),
        subjects=subjects, collector=collector, clock=ManualClock(),
        wake=lambda: wakes.append(1), on_state=lambda *_: None,
    )  # fmt: skip


def test_emit_reads_interns_once_maps_zones_and_drops_unmapped_antennas() -> None:
    subjects, collector, wakes = Subjects(), ReadCollector(), []
    ctx = context(subjects, collector, wakes)
    customer, item = bytes.fromhex("C0FFEE000000000000000001"), bytes.fromhex("3034257BF7194E40")
    epcs = [customer, item, customer, item]
    emit(ctx, epcs, [1, 2, 3, 16], [-50, -51, -52, -53])
    emit(ctx, [item], [2], [math.nan])
    batch = collector.drain()
    assert subjects.raw_ids == ["C0FFEE000000000000000001", "3034257BF7194E40"]
    assert subjects.kinds == [SubjectKind.CUSTOMER, SubjectKind.ITEM]
    assert batch.subject.tolist() == [0, 1, 1]
    assert batch.zone.tolist() == [0, 3, 3]
    assert batch.antenna.tolist() == [1, 2, 2]
    assert (ctx.reads, ctx.unmapped_reads, len(wakes)) == (3, 2, 2)


def test_bulk_and_single_reads_of_one_epc_share_a_subject() -> None:
    subjects, collector, wakes = Subjects(), ReadCollector(), []
    ctx = context(subjects, collector, wakes)
    ctx.emit_read("3034257BF7194E40", 1, -40.0)
    emit(ctx, [bytes.fromhex("3034257BF7194E40")], [1], [-41])
    assert collector.drain().subject.tolist() == [0, 0]
    assert len(subjects) == 1


def test_a_streaming_port_read_in_one_call_takes_what_the_scan_and_emit_reads_take() -> None:
    """``emit_stream`` (the scan and the ingest in one kernel call) against the two calls,
    on one stream cut at awkward places, with garbage and keep-alives in it: the same rows,
    subjects, counters and other frames, and the same bytes kept for the next read."""
    flags = commands.DEFAULT_METADATA_FLAGS
    epcs = [bytes.fromhex("C0FFEE000000000000000001"), bytes.fromhex("3034257BF7194E40"),
            bytes.fromhex("3034257BF46DB680000003EF")]  # fmt: skip
    stream = b""
    for i in range(30):
        read = TagRead.for_epc(epcs[i % 3], rssi_dbm=-50 - i, tx_port=1 + i % 3, rx_port=1)
        stream += encode_stream_record(read, metadata_flags=flags).to_bytes()
        if i % 7 == 3:
            stream += encode_keepalive().to_bytes() + b"\x00\xff\x13"  # and some garbage
    cuts = [0, 5, 61, 62, 200, 333, 334, len(stream)]
    (subjects_a, rows_a, wakes_a), (subjects_b, rows_b, wakes_b) = (
        (Subjects(), ReadCollector(), []), (Subjects(), ReadCollector(), []),
    )  # fmt: skip
    a, b = context(subjects_a, rows_a, wakes_a), context(subjects_b, rows_b, wakes_b)
    stats_a, stats_b = DecoderStats(), DecoderStats()
    rest_a = rest_b = b""
    others_a: list[bytes] = []
    others_b: list[bytes] = []
    scanner = batch.Scanner()
    for lo, hi in itertools.pairwise(cuts):
        buf = rest_a + stream[lo:hi]
        found = batch.scan(buf)
        found.add_to(stats_a)
        a.emit_reads(buf, found.epc_off, found.epc_len, found.antenna, found.rssi, 0.05)
        others_a += found.others(buf)
        rest_a = buf[found.consumed :]

        buf = rest_b + stream[lo:hi]
        counters = np.zeros(batch.N_COUNTERS, np.int64)
        consumed, _, others = b.emit_stream(buf, scanner, counters, 0.05)
        batch.add_counters(counters, stats_b)
        others_b += scanner.others(buf, others)
        rest_b = buf[consumed:]
    got_a, got_b = rows_a.drain(), rows_b.drain()
    assert len(got_a) == 20  # the reads on antenna 3, which the context maps to no zone: 10
    assert a.unmapped_reads == 10
    for column in ReadBatch.__slots__:
        assert getattr(got_a, column).tolist() == getattr(got_b, column).tolist(), column
    assert subjects_a.raw_ids == subjects_b.raw_ids
    assert (a.reads, a.unmapped_reads, len(wakes_a)) == (b.reads, b.unmapped_reads, len(wakes_b))
    assert stats_a.rejections() == stats_b.rejections()
    assert stats_a.frames == stats_b.frames > 30
    assert others_a == others_b
    assert len(others_a) == 4  # the keep-alives
    assert stats_a.discarded_bytes > 0  # the garbage
    assert rest_a == rest_b
