"""Gaps in a gateway's seq line: noticed, reported after the grace period, closed on arrival."""

from __future__ import annotations

import logging

import pytest
from sample_events import event, payload, topic_of

from central.losswatch import LossWatch
from central.records import EventRow, classify, event_rows
from central.store import Store

PREFIX = "silentcommerce/v1"
GRACE = 60.0


def rows(*seqs: int, gateway: str = "gw-1") -> list[EventRow]:
    found = []
    for seq in seqs:
        doc = event(seq, gateway=gateway)
        found += event_rows(classify(topic_of(doc), PREFIX), payload(doc))
    return found


def gaps(store: Store) -> list[tuple[object, ...]]:
    return store.query(
        "SELECT gateway, first_seq, last_seq, noticed_at, reported_at, closed_at FROM seq_gaps "
        "ORDER BY gateway, first_seq, noticed_at"
    )


def test_a_gap_is_reported_after_the_grace_period_and_closed_when_it_arrives(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    watch = LossWatch(store, GRACE)
    store.insert(rows(1, 2, 5, 6), 0.0)
    assert watch.check(30.0) == []  # the line's start may still move down
    assert gaps(store) == []
    assert watch.check(100.0) == []
    assert gaps(store) == [("gw-1", 3, 4, 100.0, None, None)]
    with caplog.at_level(logging.WARNING, "central.losswatch"):
        (reported,) = watch.check(160.0)
    assert (reported.first_seq, reported.last_seq, reported.count) == (3, 4, 2)
    assert "seq gap: store-042/gw-1 seq 3-4 (2 events) missing for 60 s" in caplog.text
    assert watch.check(200.0) == []  # reported once
    store.insert(rows(3, 4), 210.0)
    with caplog.at_level(logging.INFO, "central.losswatch"):
        watch.check(220.0)
    assert gaps(store) == [("gw-1", 3, 4, 100.0, 160.0, 220.0)]
    assert "seq gap closed: store-042/gw-1 seq 3-4 arrived 120 s after" in caplog.text


def test_a_gap_partly_filled_keeps_its_age_and_report(store: Store) -> None:
    watch = LossWatch(store, GRACE)
    store.insert(rows(1, 10), 0.0)
    watch.check(100.0)
    watch.check(160.0)
    store.insert(rows(5), 170.0)
    assert watch.check(180.0) == []  # the halves were reported as the whole
    open_ = [g for g in gaps(store) if g[5] is None]
    assert open_ == [("gw-1", 2, 4, 100.0, 160.0, None), ("gw-1", 6, 9, 100.0, 160.0, None)]


def test_the_line_starts_below_the_lowest_seq_of_the_first_moments(store: Store) -> None:
    watch = LossWatch(store, GRACE)
    store.insert(rows(501, 502), 0.0)  # a consumer joining a gateway that has run a while
    store.insert(rows(499, 500), 10.0)  # another member's share, committed later
    watch.check(100.0)
    store.insert(rows(504), 110.0)
    watch.check(120.0)
    assert gaps(store) == [("gw-1", 503, 503, 120.0, None, None)]
    assert store.query("SELECT contiguous_to FROM seq_lines") == [(502,)]


def test_gateways_have_lines_of_their_own(store: Store) -> None:
    watch = LossWatch(store, GRACE)
    store.insert(rows(1, 2, 3) + rows(1, 3, gateway="gw-2"), 0.0)
    watch.check(100.0)
    assert [g[:3] for g in gaps(store)] == [("gw-2", 2, 2)]


def test_no_events_no_gaps(store: Store) -> None:
    assert LossWatch(store, GRACE).check(0.0) == []
