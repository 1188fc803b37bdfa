"""The outbox database itself: connections, schema migrations, and how SQLite's errors read.

Durability choices (zigpy's appdb is the model): WAL, so the uplink's reads never block the
pipeline's writes; ``synchronous=FULL`` by default, because a Pi loses power without warning and
NORMAL may lose the last commits then (never corrupt the file, but lose accepted events);
``PRAGMA user_version`` for migrations; ``quick_check`` at start.
"""

from __future__ import annotations

import errno
import logging
import sqlite3
from pathlib import Path
from typing import Final

from gateway.errors import OutboxError

log = logging.getLogger(__name__)

WAL_LIMIT_BYTES: Final = 4 << 20  # the WAL is truncated back to this after a checkpoint

SCHEMA_VERSION: Final = 3
_MIGRATIONS: Final = {
    1: """
        CREATE TABLE events (
            seq INTEGER PRIMARY KEY,            -- per gateway, +1 per event, never reused
            id TEXT NOT NULL,
            type TEXT NOT NULL,
            body TEXT NOT NULL,                 -- the JSON as published, seq included
            droppable INTEGER NOT NULL DEFAULT 0,
            accepted REAL NOT NULL              -- unix time of the commit
        );
        CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
        INSERT INTO meta VALUES ('last_seq', 0), ('dropped', 0);
    """,
    2: """
        CREATE TABLE dropped (type TEXT PRIMARY KEY, count INTEGER NOT NULL);
        INSERT INTO meta VALUES ('lost', 0);
        -- commands seen, executed or refused: replays are refused by command_id
        CREATE TABLE commands (
            command_id TEXT PRIMARY KEY,
            output_id TEXT NOT NULL,
            outcome TEXT NOT NULL,              -- 'running', 'ok', or the error message
            seen REAL NOT NULL                  -- unix time of arrival, for people to read
        );
        CREATE INDEX commands_seen ON commands (seen);
    """,
    3: """
        -- ledger time of arrival: running seconds that never step (gateway/commands/ledger.py);
        -- rows from before count as the oldest
        ALTER TABLE commands ADD COLUMN t REAL NOT NULL DEFAULT 0;
        DROP INDEX commands_seen;
        CREATE INDEX commands_t ON commands (t);
    """,
}

# Primary result codes (the low byte of SQLite's extended codes).
SQLITE_BUSY: Final = 5
SQLITE_LOCKED: Final = 6
SQLITE_CORRUPT: Final = 11
SQLITE_FULL: Final = 13
SQLITE_NOTADB: Final = 26


def connect(
    path: Path, synchronous: str, *, readonly: bool = False, busy_timeout_s: float = 5.0
) -> sqlite3.Connection:
    # check_same_thread=False: opened on one thread, used on the writer thread (or the loop's).
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'full' else 'NORMAL'}")
        conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        conn.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
        if readonly:
            conn.execute("PRAGMA query_only=1")
    except sqlite3.Error:
        conn.close()
        raise
    return conn


def code(exc: BaseException) -> int | None:
    value = getattr(exc, "sqlite_errorcode", None)
    return None if value is None else int(value) & 0xFF


def is_full(exc: BaseException) -> bool:
    """SQLITE_FULL (the disk, or ``max_page_count``), or the OS saying the disk is full."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    return code(exc) == SQLITE_FULL or "disk is full" in str(exc)


def is_corrupt(exc: BaseException) -> bool:
    return code(exc) in (SQLITE_CORRUPT, SQLITE_NOTADB)


def is_transient(exc: BaseException) -> bool:
    """Another connection holds the lock: the same connection may succeed later."""
    return code(exc) in (SQLITE_BUSY, SQLITE_LOCKED)


def meta(conn: sqlite3.Connection, key: str) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return int(row[0])


def used_bytes(conn: sqlite3.Connection) -> int:
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    return int((pages - free) * size)


class Transaction:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self._conn.execute("COMMIT")
        elif self._conn.in_transaction:
            # SQLITE_FULL may already have rolled the transaction back on its own.
            self._conn.execute("ROLLBACK")


class Corrupt(Exception):
    """``quick_check`` failed, or SQLite says the file is not a database or is malformed."""


def check_integrity(conn: sqlite3.Connection) -> None:
    result = conn.execute("PRAGMA quick_check").fetchone()[0]
    if result != "ok":
        raise Corrupt(" ".join(str(result).split()))  # one line, for the log and the status


def migrate(conn: sqlite3.Connection) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise OutboxError(
            f"the outbox has schema {version}, newer than this silentgate ({SCHEMA_VERSION})"
        )
    for target in range(version + 1, SCHEMA_VERSION + 1):
        log.info("migrating the outbox schema to version %d", target)
        # executescript would commit on its own; one transaction per migration step instead.
        with Transaction(conn):
            for statement in _MIGRATIONS[target].split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {target}")
