from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from gateway.errors import OutboxError
from gateway.events import DeviceStatus
from gateway.ids import new_event_id
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


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    (tmp_path / "o.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(OutboxError, match="cannot open the outbox"):
        Outbox.open(tmp_path / "o.db")
