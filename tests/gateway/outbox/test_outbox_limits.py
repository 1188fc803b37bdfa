"""The outbox at its size limit: droppable events go first (counted, never given a seq), the
rest wait in memory and are stored once deliveries free space, and only an overflow of memory
loses events, counted. A full outbox and a full disk fail alike (SQLITE_FULL)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from gateway.config.sections import StorageConfig
from gateway.events.ids import new_event_id
from gateway.events.model import AnyEvent, PresenceEnter, ShelfWeight, Source, Subject
from gateway.outbox import HELD_MAX, HIGH_WATER, SCHEMA_VERSION, Outbox
from gateway.uplink.status import StatusBoard

LIMIT = 64 << 10  # 16 pages of 4 KiB


def enter(n: int) -> PresenceEnter:
    return PresenceEnter(
        id=str(new_event_id()),
        ts="2026-11-22T10:00:00.000Z",
        store="store-042",
        gateway="gw-1",
        zone="shelf-a",
        subject=Subject(kind="item", id=f"{n:024X}"),
        source=Source(device="door", antenna=1),
    )


def weight(n: int) -> ShelfWeight:
    return ShelfWeight(
        id=str(new_event_id()),
        ts="2026-11-22T10:00:00.000Z",
        store="store-042",
        gateway="gw-1",
        zone="shelf-a",
        grams=float(n),
        delta_g=1.0,
        sensor="scale",
    )


def fill_to_high_water(outbox: Outbox) -> None:
    while outbox.used_bytes() <= HIGH_WATER * LIMIT:
        outbox.append([enter(i) for i in range(10)])


def test_above_high_water_droppable_events_are_dropped_counted_and_get_no_seq(
    tmp_path: Path,
) -> None:
    outbox = Outbox.open(tmp_path / "o.db", max_bytes=LIMIT)
    fill_to_high_water(outbox)
    before = outbox.last_seq
    mixed: list[AnyEvent] = [weight(1), enter(1), weight(2)]
    assert outbox.append(mixed) == [before + 1]
    backlog = outbox.backlog()
    assert backlog.full
    assert backlog.dropped == {"shelf.weight": 2}
    assert json.loads(outbox.pending(after=before)[0].body)["type"] == "presence.enter"
    seqs = [r.seq for r in outbox.pending(limit=10_000)]
    assert seqs == list(range(1, outbox.last_seq + 1))


def test_below_high_water_droppable_events_are_stored(tmp_path: Path) -> None:
    outbox = Outbox.open(tmp_path / "o.db", max_bytes=LIMIT)
    assert outbox.append([weight(1), enter(1)]) == [1, 2]
    assert outbox.backlog().dropped == {}
    assert not outbox.backlog().full


def test_when_nothing_fits_events_wait_in_memory_and_are_stored_after_delivery(
    tmp_path: Path,
) -> None:
    outbox = Outbox.open(tmp_path / "o.db", max_bytes=LIMIT)
    stored: list[int] = []
    while not outbox.backlog().held:
        stored += outbox.append([enter(i) for i in range(20)])
    held = outbox.backlog().held
    assert held > 0
    assert outbox.backlog().full
    outbox.mark_delivered(stored)
    backlog = outbox.backlog()
    assert (backlog.held, backlog.lost) == (0, 0)
    # Held events were stored in arrival order, right after the last stored seq.
    assert [r.seq for r in outbox.pending()] == list(range(stored[-1] + 1, stored[-1] + held + 1))


def test_each_step_is_logged_when_it_starts_dropping_first_then_holding(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    outbox = Outbox.open(tmp_path / "o.db", max_bytes=LIMIT)
    fill_to_high_water(outbox)
    outbox.append([weight(1)])  # step 1: droppable events are dropped
    stored: list[int] = []
    while not outbox.backlog().held:  # step 2: nothing fits, events wait in memory
        stored += outbox.append([enter(i) for i in range(20)])
    outbox.mark_delivered([r.seq for r in outbox.pending(limit=100_000)])
    outbox.append([enter(0)])
    messages = [r.getMessage() for r in caplog.records]
    assert any("nearly full" in m for m in messages)  # may flap at the high-water mark
    assert sum("holding events in memory" in m for m in messages) == 1
    assert sum("events held in memory" in m for m in messages) == 1


def test_beyond_the_memory_bound_events_are_lost_and_counted(tmp_path: Path) -> None:
    outbox = Outbox.open(tmp_path / "o.db", max_bytes=LIMIT)
    outbox.append([enter(i) for i in range(HELD_MAX + 50)])
    backlog = outbox.backlog()
    assert (backlog.held, backlog.lost, backlog.count) == (HELD_MAX, 50, 0)
    outbox.close()  # and those still held in memory are lost now
    assert Outbox.open(tmp_path / "o.db").backlog().lost == 50 + HELD_MAX  # durable count


def test_the_file_never_grows_past_the_limit(tmp_path: Path) -> None:
    outbox = Outbox.open(tmp_path / "o.db", max_bytes=LIMIT)
    for _ in range(50):
        outbox.append([enter(i) for i in range(20)])
    outbox.close()
    conn = sqlite3.connect(tmp_path / "o.db")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert (tmp_path / "o.db").stat().st_size <= LIMIT


def test_a_version_1_outbox_is_migrated_and_keeps_its_seq(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "o.db")
    conn.executescript(
        """
        CREATE TABLE events (seq INTEGER PRIMARY KEY, id TEXT NOT NULL, type TEXT NOT NULL,
            body TEXT NOT NULL, droppable INTEGER NOT NULL DEFAULT 0, accepted REAL NOT NULL);
        CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
        INSERT INTO meta VALUES ('last_seq', 41), ('dropped', 0);
        PRAGMA user_version = 1;
        """
    )
    conn.close()
    outbox = Outbox.open(tmp_path / "o.db")
    assert outbox.append([enter(1)]) == [42]
    assert outbox.pragma("user_version") == SCHEMA_VERSION


@pytest.mark.parametrize("kind", ["presence.enter", "item.pickup", "no.such"])
def test_presence_item_and_unknown_types_cannot_be_made_droppable(kind: str) -> None:
    with pytest.raises(ValidationError):
        StorageConfig(droppable=[kind])


def test_the_status_says_the_outbox_is_full_in_figures_and_in_words(tmp_path: Path) -> None:
    outbox = Outbox.open(tmp_path / "o.db", max_bytes=LIMIT)
    status = StatusBoard(outbox.backlog)
    assert "alerts" not in json.loads(status.payload())
    fill_to_high_water(outbox)
    outbox.append([weight(1)])
    body = json.loads(status.payload())
    assert body["outbox"]["full"] is True
    assert body["outbox"]["dropped"] == {"shelf.weight": 1}
    assert body["outbox"]["max_bytes"] == LIMIT
    assert body["alerts"][0].startswith("outbox full")
    assert "outbox" not in json.loads(status.payload("offline"))


def test_events_still_waiting_in_memory_at_close_are_counted_as_lost(tmp_path: Path) -> None:
    outbox = Outbox.open(tmp_path / "o.db", max_bytes=LIMIT)
    while not outbox.backlog().held:
        outbox.append([enter(i) for i in range(20)])
    held = outbox.backlog().held
    outbox.close()
    assert Outbox.open(tmp_path / "o.db").backlog().lost == held


Op = tuple[str, list[bool] | int]
operations = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.lists(st.booleans(), max_size=60)),  # True: a weight
        st.tuples(st.just("deliver"), st.integers(0, 200)),
        st.tuples(st.just("reopen"), st.just(0)),
    ),
    max_size=30,
)


ENTERS: list[AnyEvent] = [enter(i) for i in range(60)]  # built once: the outbox copies them
WEIGHTS: list[AnyEvent] = [weight(i) for i in range(60)]


@given(ops=operations)
def test_every_event_is_accounted_for_and_seq_stays_contiguous(
    tmp_path_factory: pytest.TempPathFactory, ops: list[Op]
) -> None:
    """Whatever mix of appends, deliveries and restarts: stored seqs form one run ending at
    last_seq, and accepted + held + dropped + lost equals what was offered."""
    path = tmp_path_factory.mktemp("prop") / "o.db"
    outbox = Outbox.open(path, max_bytes=LIMIT, synchronous="normal")
    offered = 0
    for op, arg in ops:
        if op == "append" and isinstance(arg, list):
            outbox.append([WEIGHTS[i] if w else ENTERS[i] for i, w in enumerate(arg)])
            offered += len(arg)
        elif op == "deliver" and isinstance(arg, int):
            outbox.mark_delivered(r.seq for r in outbox.pending(limit=arg))
        else:
            outbox.close()
            outbox = Outbox.open(path, max_bytes=LIMIT, synchronous="normal")
        stored = [r.seq for r in outbox.pending(limit=100_000)]
        assert stored == list(range(outbox.last_seq - len(stored) + 1, outbox.last_seq + 1))
        b = outbox.backlog()
        assert set(b.dropped) <= {"shelf.weight"}
        assert b.last_seq + b.held + sum(b.dropped.values()) + b.lost == offered
    outbox.close()


@pytest.mark.parametrize(("setting", "level"), [("full", 2), ("normal", 1)])
def test_marking_delivered_keeps_the_configured_synchronous_level(
    tmp_path: Path, setting: str, level: int
) -> None:
    outbox = Outbox.open(tmp_path / "o.db", synchronous=setting)
    outbox.append([enter(1)])
    outbox.mark_delivered([1])
    assert outbox.pragma("synchronous") == level


def test_while_events_are_held_the_status_says_what_holds_them(tmp_path: Path) -> None:
    outbox = Outbox.open(tmp_path / "o.db", max_bytes=LIMIT)
    while not outbox.backlog().held:
        outbox.append([enter(i) for i in range(20)])
    # A write that needs no room (the retry's probe) succeeds while the held events still do not
    # fit: the reason must keep the cause, not only the count.
    outbox.retry()
    health = outbox.health()
    assert outbox.backlog().held > 0
    assert health.state == "full"
    assert "wait in memory" in (health.reason or "")
    assert "limit" in (health.reason or "")
