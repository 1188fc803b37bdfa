from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.errors import OutboxError
from gateway.events.ids import new_event_id
from gateway.events.model import DeviceStatus
from gateway.outbox import SCHEMA_VERSION, Outbox


def status_event(n: int) -> DeviceStatus:
    return DeviceStatus(
        id=str(new_event_id()),
        ts="2026-11-22T10:00:00.000Z",
        store="store-042",
        gateway="gw-1",
        device=f"reader-{n}",
        state="ok",
    )


def test_seq_is_assigned_in_the_transaction_and_written_into_the_body(tmp_path: Path) -> None:
    outbox = Outbox.open(tmp_path / "o.db")
    assert outbox.append([status_event(1), status_event(2)]) == [1, 2]
    rows = outbox.pending()
    assert [r.seq for r in rows] == [1, 2]
    assert [json.loads(r.body)["seq"] for r in rows] == [1, 2]
    assert rows[0].type == "device.status"


def test_seq_survives_reopen_and_is_never_reused_after_pruning(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    outbox = Outbox.open(path)
    outbox.append([status_event(i) for i in range(5)])
    outbox.mark_delivered([1, 2, 3, 4, 5])
    assert outbox.backlog().count == 0
    outbox.close()
    reopened = Outbox.open(path)
    assert reopened.append([status_event(9)]) == [6]


def test_pending_pages_in_seq_order_and_delivered_rows_disappear(tmp_path: Path) -> None:
    outbox = Outbox.open(tmp_path / "o.db")
    outbox.append([status_event(i) for i in range(10)])
    assert [r.seq for r in outbox.pending(after=3, limit=4)] == [4, 5, 6, 7]
    outbox.mark_delivered([4, 6])
    assert [r.seq for r in outbox.pending(after=3, limit=4)] == [5, 7, 8, 9]
    backlog = outbox.backlog()
    assert (backlog.count, backlog.last_seq) == (8, 10)
    assert backlog.oldest_accepted is not None


def test_schema_version_is_recorded(tmp_path: Path) -> None:
    Outbox.open(tmp_path / "o.db").close()
    conn = sqlite3.connect(tmp_path / "o.db")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    Outbox.open(tmp_path / "o.db").close()
    conn = sqlite3.connect(tmp_path / "o.db")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(OutboxError, match="newer than this silentgate"):
        Outbox.open(tmp_path / "o.db")


# The writer thread: a commit waiting for the disk does not hold up the event loop, and events
# handed to it are stored even when the caller is cancelled. A second connection holding
# SQLite's write lock stands in for a slow fsync: the writer's commit then waits
# (``busy_timeout``) as it would for the disk, for as long as the test chooses, with no timing.


@contextlib.contextmanager
def disk_busy(path: Path) -> Iterator[None]:
    """Hold the database's write lock until the block ends."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        conn.execute("COMMIT")
        conn.close()


async def test_the_loop_runs_and_reads_while_a_store_waits_for_the_disk(tmp_path: Path) -> None:
    outbox = Outbox.open(tmp_path / "o.db")
    outbox.append([status_event(0)])
    with disk_busy(tmp_path / "o.db"):
        store = asyncio.create_task(outbox.store([status_event(1), status_event(2)]))
        # The loop keeps turning while the commit waits; a store run on the loop itself would
        # have blocked it here until busy_timeout and then failed with "database is locked".
        await asyncio.sleep(0.2)
        assert not store.done()
        # Reads go to their own connection, which WAL never blocks.
        assert [r.seq for r in outbox.pending()] == [1]
        assert outbox.backlog().count == 1
    assert await store == [2, 3]
    assert [r.seq for r in outbox.pending()] == [1, 2, 3]
    outbox.close()


async def test_a_cancelled_store_still_stores_its_events(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    outbox = Outbox.open(path)
    with disk_busy(path):
        store = asyncio.create_task(outbox.store([status_event(1)]))
        await asyncio.sleep(0.05)
        store.cancel()
        with pytest.raises(asyncio.CancelledError):
            await store
    # What was handed over is committed before close returns (the daemon's shutdown order).
    outbox.close()
    reopened = Outbox.open(path)
    assert [r.seq for r in reopened.pending()] == [1]
    reopened.close()


async def test_writes_keep_the_order_they_were_asked_for_in(tmp_path: Path) -> None:
    outbox = Outbox.open(tmp_path / "o.db")
    with disk_busy(tmp_path / "o.db"):
        first = asyncio.create_task(outbox.store([status_event(1)]))
        await asyncio.sleep(0.05)  # queued on the writer thread behind nothing but the lock
        delivered = asyncio.create_task(outbox.delivered([1]))
        second = asyncio.create_task(outbox.store([status_event(2)]))
        await asyncio.sleep(0.05)
    assert (await first, await second) == ([1], [2])
    await delivered
    assert [r.seq for r in outbox.pending()] == [2]
    # The blocking form goes through the same queue: it comes after everything above.
    assert outbox.append([status_event(3)]) == [3]
    outbox.close()


async def test_the_command_ledger_writes_in_the_writer_threads_order(tmp_path: Path) -> None:
    outbox = Outbox.open(tmp_path / "o.db")

    def record(conn: sqlite3.Connection) -> int:
        conn.execute("INSERT INTO commands VALUES ('c1', 'relay-1', 'ok', 0, 0)")
        return int(conn.execute("SELECT count(*) FROM commands").fetchone()[0])

    with disk_busy(tmp_path / "o.db"):
        stored = asyncio.create_task(outbox.store([status_event(1)]))
        await asyncio.sleep(0.05)
        recorded = asyncio.create_task(outbox.transact(record))
        await asyncio.sleep(0.05)
        assert not stored.done()
        assert not recorded.done()  # queued behind the store, not interleaved with it
    assert (await stored, await recorded) == ([1], 1)
    outbox.close()
    outbox.close()  # a second close is harmless


def test_pragma_refuses_anything_but_a_name(tmp_path: Path) -> None:
    outbox = Outbox.open(tmp_path / "o.db")
    with pytest.raises(ValueError, match="not a PRAGMA name"):
        outbox.pragma("synchronous=OFF")
    assert outbox.pragma("synchronous") == 2
    outbox.close()


def row_count(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
    finally:
        conn.close()


async def test_rows_delivered_later_are_skipped_at_once_and_deleted_with_the_next_store(
    tmp_path: Path,
) -> None:
    path = tmp_path / "o.db"
    outbox = Outbox.open(path)
    try:
        await outbox.store([status_event(i) for i in range(4)])
        outbox.delivered_later([1, 2])
        assert [r.seq for r in outbox.pending()] == [3, 4]  # skipped before any delete
        assert outbox.backlog().count == 2
        assert row_count(path) == 4
        assert outbox.waiting_deletes == 2
        await outbox.store([status_event(9)])  # the deletes ride along
        assert row_count(path) == 3
        assert outbox.waiting_deletes == 0
        outbox.delivered_later([3])
        await outbox.flush_delivered()  # or go on their own
        assert row_count(path) == 2
        outbox.delivered_later([4])
    finally:
        outbox.close()  # and what waits is deleted at close
    assert row_count(path) == 1
