"""The durable outbox: every accepted event lives here until the broker has acknowledged it.

An event counts as accepted only once the transaction that stores it has committed; that same
transaction assigns its ``seq``, so ``seq`` is gap-free and never reused, across restarts and
kill -9 alike (the last assigned value lives in ``meta`` and only moves forward). Rows are deleted
once the broker's PUBACK arrives, so the table holds only the undelivered backlog.

Durability choices (zigpy's appdb is the model): WAL, so the uplink's reads never block the
pipeline's writes; ``synchronous=FULL`` by default, because a Pi loses power without warning and
NORMAL may lose the last commits then (never corrupt the file, but lose accepted events);
``PRAGMA user_version`` for migrations; ``quick_check`` at start. One connection, one writer: the
event loop's thread.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from gateway.errors import OutboxError
from gateway.events import AnyEvent

log = logging.getLogger(__name__)

SCHEMA_VERSION: Final = 1
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
}


@dataclass(frozen=True, slots=True)
class Row:
    seq: int
    type: str
    body: str


@dataclass(frozen=True, slots=True)
class Backlog:
    count: int
    oldest_accepted: float | None  # unix time; None when empty
    last_seq: int

    def oldest_age_s(self, now: float) -> float:
        return 0.0 if self.oldest_accepted is None else max(0.0, now - self.oldest_accepted)


class Outbox:
    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self.last_seq = self._meta("last_seq")

    @classmethod
    def open(cls, path: Path, *, synchronous: str = "full") -> Outbox:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'full' else 'NORMAL'}")
            conn.execute("PRAGMA busy_timeout=5000")
            _check_integrity(conn, path)
            _migrate(conn)
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot open the outbox {path}: {exc}") from exc
        return cls(conn, path)

    def close(self) -> None:
        self._conn.close()

    def append(self, events: Sequence[AnyEvent], *, droppable: Iterable[bool] = ()) -> list[int]:
        """Store events in one transaction, assigning their seq; returns the seqs."""
        if not events:
            return []
        flags = list(droppable) or [False] * len(events)
        first = self.last_seq + 1
        now = time.time()
        rows = [
            (first + i, e.id, e.type, e.model_copy(update={"seq": first + i}).to_json(), d, now)
            for i, (e, d) in enumerate(zip(events, flags, strict=True))
        ]
        last = first + len(rows) - 1
        try:
            with self._transaction():
                self._conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)", rows)
                self._conn.execute("UPDATE meta SET value = ? WHERE key = 'last_seq'", (last,))
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot store {len(rows)} events: {exc}") from exc
        self.last_seq = last
        return [r[0] for r in rows]

    def pending(self, after: int = 0, limit: int = 1000) -> list[Row]:
        cur = self._conn.execute(
            "SELECT seq, type, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)
        )
        return [Row(*r) for r in cur]

    def mark_delivered(self, seqs: Iterable[int]) -> None:
        batch = [(s,) for s in seqs]
        if not batch:
            return
        try:
            with self._transaction():
                self._conn.executemany("DELETE FROM events WHERE seq = ?", batch)
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot mark {len(batch)} events delivered: {exc}") from exc

    def backlog(self) -> Backlog:
        count, oldest = self._conn.execute("SELECT count(*), min(accepted) FROM events").fetchone()
        return Backlog(count=count, oldest_accepted=oldest, last_seq=self.last_seq)

    def _meta(self, key: str) -> int:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0])

    def _transaction(self) -> _Transaction:
        return _Transaction(self._conn)


class _Transaction:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._conn.execute("ROLLBACK" if exc_type else "COMMIT")


def _check_integrity(conn: sqlite3.Connection, path: Path) -> None:
    result = conn.execute("PRAGMA quick_check").fetchone()[0]
    if result != "ok":
        raise OutboxError(f"the outbox {path} is damaged ({result}); restore it from a backup")


def _migrate(conn: sqlite3.Connection) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise OutboxError(
            f"the outbox has schema {version}, newer than this silentgate ({SCHEMA_VERSION})"
        )
    for target in range(version + 1, SCHEMA_VERSION + 1):
        log.info("migrating the outbox schema to version %d", target)
        # executescript would commit on its own; one transaction per migration step instead.
        conn.execute("BEGIN IMMEDIATE")
        for statement in _MIGRATIONS[target].split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {target}")
        conn.execute("COMMIT")
