"""The embedded backend: one SQLite file in WAL mode, ``synchronous = FULL`` (a message is
acknowledged only after its commit is on disk). Several consumers on one host may share the
file (SQLite serialises writers; ``busy_timeout`` makes the others wait), but it is meant for
one: a chain of stores uses PostgreSQL."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Final

from central.records import EventRow
from central.store import Store, StoreError

BUSY_TIMEOUT_MS: Final = 30_000
SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY,
    store TEXT NOT NULL,
    gateway TEXT NOT NULL,
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    ts TEXT NOT NULL,           -- 2026-11-22T10:00:00.123Z: sorts as time does
    zone TEXT,
    subject_kind TEXT,
    subject_id TEXT,
    payload TEXT NOT NULL,      -- the event object, JSON
    received_at REAL NOT NULL,  -- unix seconds, when the consumer stored it
    UNIQUE (store, gateway, seq)
);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts);
CREATE TABLE IF NOT EXISTS seq_conflicts (
    id TEXT PRIMARY KEY,
    store TEXT NOT NULL,
    gateway TEXT NOT NULL,
    seq INTEGER NOT NULL,
    held_by TEXT,
    payload TEXT NOT NULL,
    seen_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS seq_lines (
    store TEXT NOT NULL,
    gateway TEXT NOT NULL,
    contiguous_to INTEGER NOT NULL,
    first_seen REAL NOT NULL,
    settled INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (store, gateway)
);
CREATE TABLE IF NOT EXISTS seq_gaps (
    store TEXT NOT NULL,
    gateway TEXT NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    noticed_at REAL NOT NULL,
    reported_at REAL,
    closed_at REAL
);
CREATE INDEX IF NOT EXISTS seq_gaps_open ON seq_gaps (store, gateway) WHERE closed_at IS NULL;
CREATE TABLE IF NOT EXISTS gateway_status (
    store TEXT NOT NULL,
    gateway TEXT NOT NULL,
    state TEXT NOT NULL,
    ts TEXT NOT NULL,
    received_at REAL NOT NULL,
    PRIMARY KEY (store, gateway, ts, state)
);
"""


class SqliteStore(Store):
    @classmethod
    def open(cls, path: str) -> SqliteStore:
        try:
            conn = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False, isolation_level=None
            )
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open {path}: {exc}") from exc
        # Explicit transactions from here on (``transaction``), as psycopg does.
        conn.isolation_level = "DEFERRED"
        return cls(conn)

    def sql(self, text: str) -> str:
        return text.replace("%s", "?")

    def _insert_events(self, cur: Any, rows: Sequence[EventRow], received_at: float) -> int:
        before = self._conn.total_changes
        cur.executemany(
            "INSERT INTO events (id, store, gateway, seq, type, ts, zone, subject_kind, "
            "subject_id, payload, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            [
                (r.id, r.store, r.gateway, r.seq, r.type, self._ts_param(r.ts), r.zone,
                 r.subject_kind, r.subject_id, r.payload, received_at)
                for r in rows
            ],
        )  # fmt: skip
        return int(self._conn.total_changes - before)

    def _ts_param(self, ts: datetime) -> object:
        utc = ts.astimezone(UTC)
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"

    def _ts_value(self, value: object) -> float:
        return datetime.fromisoformat(str(value)).timestamp()

    def is_data_error(self, exc: Exception) -> bool:
        # UnicodeError: text the driver cannot encode (a lone surrogate from a JSON escape).
        refused = sqlite3.DataError | sqlite3.IntegrityError | sqlite3.InterfaceError
        return isinstance(exc, refused | UnicodeError)

    def is_unreachable(self, exc: Exception) -> bool:
        # Locked past busy_timeout, the disk full, an I/O error: all may pass.
        return isinstance(exc, sqlite3.OperationalError)

    def reconnect(self) -> None:
        pass  # the file stays open; the failed transaction was rolled back

    @contextmanager
    def exclusive(self) -> Iterator[Any]:
        # BEGIN IMMEDIATE takes the write lock now (waiting up to busy_timeout): one writer.
        with self.transaction() as cur:
            cur.execute("BEGIN IMMEDIATE")
            yield cur
