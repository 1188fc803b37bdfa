"""Storage that degrades instead of dying, on real SQLite files: a damaged database at start is
moved aside and ``seq`` continues above the old one; an unwritable directory and a database held
locked by another process are states, with events held in memory and deliveries remembered,
until a retry finds storage usable again. Nothing here raises to the caller.

A full disk and a read-only disk need a filesystem of their own: tests/integration/
test_storage_daemon.py runs the daemon on one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.events.model import AnyEvent
from gateway.outbox import SEQ_BLOCK, Outbox
from gateway.uplink.status import StatusBoard
from tests.gateway.outbox.test_outbox_limits import enter

PAGE = 4096


def events(n: int, start: int = 0) -> list[AnyEvent]:
    return [enter(i) for i in range(start, start + n)]


def outbox_with(path: Path, n: int) -> None:
    """An outbox at ``path`` that accepted ``n`` events, closed (its WAL checkpointed away)."""
    outbox = Outbox.open(path)
    outbox.append(events(n))
    outbox.close()


def rows_in(path: Path) -> list[int]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return [seq for (seq,) in conn.execute("SELECT seq FROM events ORDER BY seq")]


def moved_aside(path: Path) -> list[Path]:
    """The databases moved aside, without their -wal and -shm."""
    found = path.parent.glob(f"{path.name}.corrupt-*")
    return sorted(p for p in found if not p.name.endswith(("-wal", "-shm")))


# -- a damaged database at start


def test_a_file_of_garbage_is_moved_aside_and_seq_continues_from_the_ceiling(
    tmp_path: Path,
) -> None:
    path = tmp_path / "o.db"
    outbox_with(path, 5)
    garbage = b"this is not sqlite" * 100
    path.write_bytes(garbage)
    outbox = Outbox.open(path)
    health = outbox.health()
    assert health.state == "ok"
    assert health.moved_aside is not None
    assert health.moved_aside.read_bytes() == garbage
    assert health.moved_aside.name.startswith("o.db.corrupt-2")
    assert health.stranded is None  # nothing could be read: unknown
    # Seqs up to the ceiling may have been given out: the fresh outbox starts above it.
    assert outbox.append(events(2)) == [SEQ_BLOCK + 1, SEQ_BLOCK + 2]
    outbox.close()


def test_a_database_damaged_but_partly_readable_is_counted_and_seq_continues_exactly(
    tmp_path: Path,
) -> None:
    path = tmp_path / "o.db"
    outbox_with(path, 10)
    (tmp_path / "o.db.seq").unlink()  # from a version before the ceiling, say
    with path.open("r+b") as f:
        f.seek(8 * PAGE)  # page 9, the command ledger's index: the events stay readable
        f.write(b"\xff" * 16)
    outbox = Outbox.open(path)
    health = outbox.health()
    assert (health.stranded, len(moved_aside(path))) == (10, 1)
    assert rows_in(moved_aside(path)[0]) == list(range(1, 11))  # left as it was
    assert outbox.append(events(1)) == [11]
    outbox.close()


def test_a_truncated_database_is_moved_aside_with_its_wal(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    outbox_with(path, 3000)
    os.truncate(path, path.stat().st_size // 2)
    Path(f"{path}-wal").write_bytes(b"")  # a WAL beside it must go with it, not meet a new file
    outbox = Outbox.open(path)
    (aside,) = moved_aside(path)
    assert Path(f"{aside}-wal").exists()
    assert Path(f"{aside}-shm").exists()
    assert outbox.append(events(1)) == [SEQ_BLOCK + 1]
    outbox.close()


def test_a_damaged_database_without_a_ceiling_jumps_to_the_wall_clock_in_ms(
    tmp_path: Path,
) -> None:
    path = tmp_path / "o.db"
    path.write_bytes(b"\0garbage" * 1000)
    before = int(time.time() * 1000)
    outbox = Outbox.open(path)
    (seq,) = outbox.append(events(1))
    assert before < seq <= int(time.time() * 1000) + 1
    outbox.close()


def test_a_missing_database_continues_from_the_ceiling(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    outbox_with(path, 5)
    path.unlink()
    outbox = Outbox.open(path)
    assert outbox.append(events(1)) == [SEQ_BLOCK + 1]
    assert moved_aside(path) == []
    outbox.close()


def test_a_first_start_in_a_directory_not_yet_made_is_ok_with_its_reserve(
    tmp_path: Path,
) -> None:
    # Without systemd's StateDirectory= the outbox makes its directory; the reserve beside it
    # is allocated then, not judged absent for want of a directory to measure.
    path = tmp_path / "state" / "o.db"
    outbox = Outbox.open(path)
    assert outbox.health().state == "ok"
    assert Path(f"{path}.reserve").exists()
    outbox.close()


def test_the_status_says_a_damaged_outbox_was_moved_aside_in_figures_and_in_words(
    tmp_path: Path,
) -> None:
    path = tmp_path / "o.db"
    path.write_bytes(b"this is not sqlite" * 100)
    outbox = Outbox.open(path)
    body = json.loads(StatusBoard(outbox.backlog).payload())
    assert body["storage"]["state"] == "ok"
    assert body["storage"]["moved_aside"] == str(moved_aside(path)[0])
    assert body["storage"]["stranded"] == "unknown"
    assert any(a.startswith("outbox damaged at start: moved to") for a in body["alerts"])
    outbox.close()


# -- storage that cannot be written


def test_an_unwritable_directory_at_start_is_a_failed_state_until_a_retry_opens_it(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("a file where the storage directory should be\n")
    outbox = Outbox.open(blocker / "o.db")
    status = StatusBoard(outbox.backlog, outbox.health)
    assert outbox.append(events(3)) == []
    body = json.loads(status.payload())
    assert body["storage"]["state"] == "failed"
    assert "cannot open" in body["storage"]["reason"]
    assert body["outbox"]["held"] == 3
    assert any(a.startswith("storage failed") for a in body["alerts"])
    blocker.unlink()
    outbox.retry()
    assert status.changed  # a storage state change is published without waiting
    assert outbox.health().state == "ok"
    assert [r.seq for r in outbox.pending()] == [1, 2, 3]
    outbox.close()


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Another process's connection holds the database's write lock until the block ends."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        conn.execute("COMMIT")
        conn.close()


async def test_a_locked_database_holds_events_and_remembers_deliveries_until_it_is_free(
    tmp_path: Path,
) -> None:
    path = tmp_path / "o.db"
    outbox = Outbox.open(path, busy_timeout_s=0.05)
    await outbox.store(events(4))
    with locked(path):
        assert await outbox.store(events(2, 4)) == []  # held, not raised
        await outbox.delivered([1, 2])  # cannot be deleted now: remembered
        health = outbox.health()
        assert health.state == "failed"
        assert "database is locked" in (health.reason or "")
        # Delivered rows are still in the file but no longer pending, nor backlog.
        assert rows_in(path) == [1, 2, 3, 4]
        assert [r.seq for r in outbox.pending()] == [3, 4]
        assert (outbox.backlog().count, outbox.backlog().held) == (2, 2)
        await outbox.store(events(1, 6))  # joins the others in memory, in order
    outbox.retry()
    assert outbox.health().state == "ok"
    assert rows_in(path) == [3, 4, 5, 6, 7]
    assert [json.loads(r.body)["subject"]["id"] for r in outbox.pending()] == [
        f"{n:024X}" for n in range(2, 7)
    ]
    outbox.close()


async def test_the_watch_loop_retries_without_being_asked(tmp_path: Path) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("not a directory\n")
    outbox = Outbox.open(blocker / "o.db")
    await outbox.store(events(2))
    blocker.unlink()
    watch = asyncio.create_task(outbox.watch())
    async with asyncio.timeout(10):
        while outbox.health().state != "ok":
            await asyncio.sleep(0.05)
    watch.cancel()
    assert [r.seq for r in outbox.pending()] == [1, 2]
    outbox.close()


def test_an_error_on_the_writer_thread_is_a_failed_state_not_an_exception(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    outbox = Outbox.open(tmp_path / "o.db")
    assert outbox.append([object()]) == []  # type: ignore[list-item]  # a bug's worth of input
    assert outbox.health().state == "failed"
    assert "internal error: AttributeError" in (outbox.health().reason or "")
    assert "the outbox writer failed" in caplog.text
    outbox.retry()
    assert outbox.health().state == "ok"
    assert outbox.append(events(1)) == [1]
    outbox.close()
