"""The read collector with single and bulk reads, and the context's bulk hand-over."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gateway.clock import ManualClock
from gateway.devices.base import DeviceContext
from gateway.reads.batch import ReadCollector, SubjectKind, Subjects
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
