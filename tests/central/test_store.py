"""The store keeps each event once: a repeat is dropped, a seq held by another id is flagged."""

from __future__ import annotations

from datetime import UTC, datetime

from sample_events import event, payload, topic_of

from central.records import EventRow, classify, event_rows
from central.store import Store

PREFIX = "silentcommerce/v1"


def row(seq: int, **fields: object) -> EventRow:
    doc = event(seq, **fields)
    (found,) = event_rows(classify(topic_of(doc), PREFIX), payload(doc))
    return found


def count(store: Store, table: str) -> int:
    return int(store.query(f"SELECT count(*) FROM {table}")[0][0])


def test_rows_are_stored_and_read_back_by_time(store: Store) -> None:
    first, second = row(1), row(2, ts="2026-11-23T11:30:00.250Z")
    assert store.insert([first, second], 1.0).stored == 2
    found = store.events_between(
        datetime(2026, 11, 23, 11, tzinfo=UTC), datetime(2026, 11, 24, tzinfo=UTC)
    )
    assert [(e.seq, e.zone, e.subject_kind) for e in found] == [(2, "shelf-a", "customer")]
    assert found[0].ts == datetime(2026, 11, 23, 11, 30, 0, 250_000, tzinfo=UTC).timestamp()


def test_a_repeated_id_is_dropped(store: Store) -> None:
    first = row(1)
    store.insert([first, row(2)], 1.0)
    inserted = store.insert([first, row(3)], 2.0)
    assert (inserted.stored, inserted.repeats, inserted.conflicts) == (1, 1, 0)
    assert count(store, "events") == 3
    assert count(store, "seq_conflicts") == 0


def test_a_repeat_within_one_batch_is_dropped(store: Store) -> None:
    first = row(1)
    inserted = store.insert([first, first], 1.0)
    assert (inserted.stored, inserted.repeats, inserted.conflicts) == (1, 1, 0)


def test_a_seq_held_by_another_id_is_flagged_not_stored(store: Store) -> None:
    held = row(5)
    store.insert([held], 1.0)
    intruder = row(5)
    inserted = store.insert([intruder, row(6)], 2.0)
    assert (inserted.stored, inserted.repeats, inserted.conflicts) == (1, 0, 1)
    assert store.query("SELECT id, seq, held_by FROM seq_conflicts") == [(intruder.id, 5, held.id)]
    assert store.query("SELECT id FROM events WHERE seq = 5") == [(held.id,)]


def test_an_id_reused_with_another_seq_is_flagged(store: Store) -> None:
    held = row(5)
    store.insert([held], 1.0)
    reused = row(9, id=held.id)
    inserted = store.insert([reused], 2.0)
    assert inserted.conflicts == 1
    assert store.query("SELECT id, seq, held_by FROM seq_conflicts") == [(held.id, 9, held.id)]
