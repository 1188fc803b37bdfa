"""Opening the outbox database: checked, migrated, proven writable, or started afresh.

A database is opened only once it has passed ``quick_check``, been migrated and taken a write
(a read-only file opens without complaint and fails at the first commit, so the probe makes that
an opening failure, retried like any other). A database SQLite calls corrupt or not a database
is moved aside (``files.move_aside``) and a fresh one started whose ``last_seq`` is the highest
figure known: the old file's ``meta.last_seq`` or its highest row where still readable, and the
seq ceiling beside it. When neither can be read, ``seq`` jumps to the wall clock in milliseconds
(about 1.8e12 in 2027, far above what a gateway reaches at hundreds of events a second), which
keeps it unique unless the clock is wrong as well. A database that is missing while its ceiling
is not (deleted by hand) starts from the ceiling too.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from gateway.outbox.files import SeqCeiling, move_aside, read_stranded
from gateway.outbox.schema import (
    Corrupt,
    Transaction,
    check_integrity,
    connect,
    is_corrupt,
    meta,
    migrate,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Settings:
    synchronous: str = "full"
    max_bytes: int | None = None
    busy_timeout_s: float = 5.0


@dataclass(frozen=True, slots=True)
class Opened:
    conn: sqlite3.Connection
    last_seq: int
    moved_aside: Path | None = None
    stranded: int | None = None  # undelivered events in the moved file; None: unknown


def open_database(path: Path, settings: Settings, ceiling: SeqCeiling, wall: float) -> Opened:
    """Raises sqlite3.Error or OSError when the file cannot be used, OutboxError when its schema
    is newer than this version."""
    path.parent.mkdir(parents=True, exist_ok=True)
    existed = path.exists()
    try:
        conn = _prepare(path, settings)
    except Corrupt as exc:
        return _afresh(path, settings, ceiling, wall, str(exc))
    if not existed and ceiling.value:
        log.warning("the outbox %s was missing: seq continues from %d", path, ceiling.value)
        _set_last_seq(conn, ceiling.value)
    return Opened(conn, meta(conn, "last_seq"))


def _prepare(path: Path, settings: Settings) -> sqlite3.Connection:
    try:
        conn = connect(path, settings.synchronous, busy_timeout_s=settings.busy_timeout_s)
    except sqlite3.DatabaseError as exc:
        if is_corrupt(exc):
            raise Corrupt(str(exc)) from exc
        raise
    try:
        check_integrity(conn)
        migrate(conn)
        _limit(conn, settings.max_bytes)
        with Transaction(conn):  # proves the file writable: a read-only one fails here
            conn.execute("UPDATE meta SET value = value WHERE key = 'last_seq'")
    except sqlite3.DatabaseError as exc:
        conn.close()
        if is_corrupt(exc):
            raise Corrupt(str(exc)) from exc
        raise
    except BaseException:
        conn.close()
        raise
    return conn


def _limit(conn: sqlite3.Connection, max_bytes: int | None) -> None:
    # Per connection: every write of the outbox goes through this one, the ledger's included.
    if max_bytes is not None:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count={max(1, max_bytes // page_size)}")


def _afresh(
    path: Path, settings: Settings, ceiling: SeqCeiling, wall: float, problem: str
) -> Opened:
    moved = move_aside(path, wall)
    stranded, highest = read_stranded(moved)
    known = [v for v in (highest, ceiling.value) if v is not None]
    start = max(known) if known else int(wall * 1000)
    conn = _prepare(path, settings)
    try:
        _set_last_seq(conn, start)
    except BaseException:
        conn.close()
        raise
    log.error(
        "the outbox %s is damaged (%s): moved to %s with %s undelivered events in it; "
        "a fresh outbox continues from seq %d",
        path,
        problem,
        moved,
        "an unknown number of" if stranded is None else stranded,
        start + 1,
    )
    return Opened(conn, start, moved, stranded)


def _set_last_seq(conn: sqlite3.Connection, value: int) -> None:
    with Transaction(conn):
        conn.execute("UPDATE meta SET value = ? WHERE key = 'last_seq'", (value,))
