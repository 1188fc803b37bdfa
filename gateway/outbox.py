"""The durable outbox: every accepted event lives here until the broker has acknowledged it.

An event counts as accepted only once the transaction that stores it has committed; that same
transaction assigns its ``seq``, so ``seq`` is gap-free and never reused, across restarts and
kill -9 alike (the last assigned value lives in ``meta`` and only moves forward). Rows are deleted
once the broker's PUBACK arrives, so the table holds only the undelivered backlog.

Durability choices (zigpy's appdb is the model): WAL, so the uplink's reads never block the
pipeline's writes; ``synchronous=FULL`` by default, because a Pi loses power without warning and
NORMAL may lose the last commits then (never corrupt the file, but lose accepted events);
``PRAGMA user_version`` for migrations; ``quick_check`` at start.

Threads: every write (events in, deliveries out) runs on one writer thread that owns the writing
connection, in the order it was asked for. A commit with ``synchronous=FULL`` waits for an fsync,
milliseconds on an SD card and now and then a hundred; on the event loop that wait would hold up
everything else, a shelf display's action included. The loop awaits ``store`` and ``delivered``
instead, and reads (``pending``, ``backlog``) on a second, read-only connection, which WAL never
blocks. The synchronous ``append`` and ``mark_delivered`` hand their work to the same thread and
wait for it, so the order of writes is the order of calls whichever form is used.

Bounded size: ``max_bytes`` becomes SQLite's ``max_page_count``, so the file cannot grow past it
and a full disk and a full outbox fail the same way (SQLITE_FULL). Above ``HIGH_WATER`` of the
limit, events of a droppable type (raw ``shelf.weight`` by default) are dropped before they get a
``seq`` (so consumers see no gap for them) and counted per type. The rest of the space is kept for
presence and item events. When even those cannot be stored, they wait in memory (up to
``HELD_MAX``) and are stored first as soon as deliveries free space; only beyond that are events
lost, and that is counted and logged as an error. ``full`` is reported in the status.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Collection, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final, TypeVar

from gateway.errors import OutboxError
from gateway.events import AnyEvent

if TYPE_CHECKING:
    from gateway.config.sections import StorageConfig

log = logging.getLogger(__name__)

_A = TypeVar("_A")
_T = TypeVar("_T")

HIGH_WATER: Final = 0.8  # above this share of max_bytes, droppable events are dropped
HELD_MAX: Final = 10_000  # events kept in memory while the outbox is full
DEFAULT_DROPPABLE: Final = frozenset({"shelf.weight"})
WAL_LIMIT_BYTES: Final = 4 << 20  # the WAL is truncated back to this after a checkpoint

SCHEMA_VERSION: Final = 2
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
            seen REAL NOT NULL                  -- unix time of arrival
        );
        CREATE INDEX commands_seen ON commands (seen);
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
    bytes: int = 0
    max_bytes: int | None = None
    full: bool = False  # droppable events are being dropped, or events are held in memory
    held: int = 0  # events waiting in memory for space; not accepted yet
    dropped: dict[str, int] = field(default_factory=dict)  # per type, since the file was made
    lost: int = 0  # events that found neither space nor room in memory

    def oldest_age_s(self, now: float) -> float:
        return 0.0 if self.oldest_accepted is None else max(0.0, now - self.oldest_accepted)


class Outbox:
    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path,
        *,
        synchronous: str = "full",
        max_bytes: int | None = None,
        droppable: Collection[str] = DEFAULT_DROPPABLE,
    ) -> None:
        self._conn = conn  # the writer thread's, once open() has returned
        self._synchronous = conn.execute("PRAGMA synchronous").fetchone()[0]  # 2 FULL, 1 NORMAL
        self._mode = synchronous
        self.path = path
        self.max_bytes = max_bytes
        self.droppable = frozenset(droppable)
        self.last_seq = _meta(conn, "last_seq")
        self._held: deque[AnyEvent] = deque()
        self._full = False
        self._holding = False  # step 2 under way: events wait in memory
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox-writer")
        # The loop and the metrics endpoint's thread both read: one statement at a time.
        self._reader = _connect(path, synchronous, readonly=True)
        self._read_lock = threading.Lock()
        self._others: list[sqlite3.Connection] = []
        self._closed = False

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        synchronous: str = "full",
        max_bytes: int | None = None,
        droppable: Collection[str] = DEFAULT_DROPPABLE,
    ) -> Outbox:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = _connect(path, synchronous)
            _check_integrity(conn, path)
            _migrate(conn)
            if max_bytes is not None:
                page_size = conn.execute("PRAGMA page_size").fetchone()[0]
                conn.execute(f"PRAGMA max_page_count={max(1, max_bytes // page_size)}")
            return cls(
                conn, path, synchronous=synchronous, max_bytes=max_bytes, droppable=droppable
            )
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot open the outbox {path}: {exc}") from exc

    @classmethod
    def from_config(cls, storage: StorageConfig) -> Outbox:
        return cls.open(
            storage.path,
            synchronous=storage.synchronous,
            max_bytes=storage.max_bytes,
            droppable=storage.droppable,
        )

    def connect(self) -> sqlite3.Connection:
        """A connection of its own to the same file (the command ledger's table lives here).

        Its writes take SQLite's file lock, so they wait for the writer thread's commit in
        progress (``busy_timeout``) rather than interleave with it. Closed by ``close``.
        """
        conn = _connect(self.path, self._mode)
        self._others.append(conn)
        return conn

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Writes already asked for (a cancelled pipeline's last store) finish first.
        self._writer.submit(self._close_writer).result()
        self._writer.shutdown(wait=True)
        for conn in (self._reader, *self._others):
            conn.close()

    def append(self, events: Sequence[AnyEvent]) -> list[int]:
        """Store events (after any held ones) in one transaction; returns the new seqs.

        Never raises for lack of space: what cannot be stored is dropped (droppable types),
        held in memory, or, beyond ``HELD_MAX``, lost, and each case is counted. Blocks the
        caller until the commit; the event loop awaits ``store`` instead.
        """
        return self._writer.submit(self._append, list(events)).result()

    async def store(self, events: Sequence[AnyEvent]) -> list[int]:
        """``append`` without holding up the event loop during the commit."""
        return await self._off_loop(self._append, list(events))

    def mark_delivered(self, seqs: Iterable[int]) -> None:
        self._writer.submit(self._mark_delivered, list(seqs)).result()

    async def delivered(self, seqs: Iterable[int]) -> None:
        """``mark_delivered`` without holding up the event loop."""
        await self._off_loop(self._mark_delivered, list(seqs))

    def pragma(self, name: str) -> object:
        """A PRAGMA's value on the writing connection (``synchronous``, ``user_version``)."""
        if not name.isidentifier():
            raise ValueError(f"not a PRAGMA name: {name!r}")
        query = f"PRAGMA {name}"
        return self._writer.submit(lambda: self._conn.execute(query).fetchone()[0]).result()

    def pending(self, after: int = 0, limit: int = 1000) -> list[Row]:
        with self._read_lock:
            cur = self._reader.execute(
                "SELECT seq, type, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, limit),
            )
            return [Row(*r) for r in cur]

    async def _off_loop(self, work: Callable[[_A], _T], arg: _A) -> _T:
        future = asyncio.get_running_loop().run_in_executor(self._writer, work, arg)
        # Once handed over, a write completes even if the caller is cancelled (shutdown): events
        # the pipeline has taken from the readers must reach the file, not vanish with the task.
        return await asyncio.shield(future)

    # -- the writer thread's side: only ever called on it, so never concurrently

    def _append(self, events: list[AnyEvent]) -> list[int]:
        keep = self._shed(events)
        self._held.extend(keep)
        if not self._held:
            return []
        try:
            seqs = self._insert(list(self._held))
        except _Full as exc:
            self._on_full(str(exc))
            return []
        if self._holding:
            log.warning("the outbox took the %d events held in memory", len(seqs))
            self._holding = False
        self._held.clear()
        self._set_full(self._above_high_water())
        return seqs

    def _mark_delivered(self, seqs: list[int]) -> None:
        batch = [(s,) for s in seqs]
        if not batch:
            return
        # A delete lost to a power cut only means a repeat, which consumers drop by id: no fsync
        # for it (the next event commit syncs it anyway). Fewer writes to the SD card.
        self._conn.execute("PRAGMA synchronous=NORMAL")
        try:
            with self._transaction():
                self._conn.executemany("DELETE FROM events WHERE seq = ?", batch)
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot mark {len(batch)} events delivered: {exc}") from exc
        finally:
            self._conn.execute(f"PRAGMA synchronous={self._synchronous}")
        if self._held:
            self._append([])  # space was freed: store what waited in memory first
        elif self._full:
            self._set_full(self._above_high_water())

    def _close_writer(self) -> None:
        if self._held:
            self._append([])  # a last try for events waiting in memory
        if self._held:
            log.error(
                "closing a full outbox: %d events waiting in memory are lost", len(self._held)
            )
            self._bump_meta("lost", len(self._held))
            self._held.clear()
        self._conn.close()

    def backlog(self) -> Backlog:
        with self._read_lock:
            conn = self._reader
            count, oldest = conn.execute("SELECT count(*), min(accepted) FROM events").fetchone()
            dropped = dict(conn.execute("SELECT type, count FROM dropped ORDER BY type"))
            lost = _meta(conn, "lost")
            used = _used_bytes(conn)
        return Backlog(
            count=count,
            oldest_accepted=oldest,
            last_seq=self.last_seq,
            bytes=used,
            max_bytes=self.max_bytes,
            full=self._full,
            held=len(self._held),
            dropped=dropped,
            lost=lost,
        )

    def used_bytes(self) -> int:
        with self._read_lock:
            return _used_bytes(self._reader)

    def _above_high_water(self) -> bool:
        return self.max_bytes is not None and _used_bytes(self._conn) > HIGH_WATER * self.max_bytes

    def _shed(self, events: Sequence[AnyEvent]) -> list[AnyEvent]:
        """Drop droppable events while space is short, counting them per type."""
        if not (self._full or self._held) and not self._above_high_water():
            return list(events)
        keep = [e for e in events if e.type not in self.droppable]
        shed = Counter[str](e.type for e in events if e.type in self.droppable)
        if shed:
            self._set_full(True)
            self._count_dropped(shed)
        return keep

    def _insert(self, events: Sequence[AnyEvent]) -> list[int]:
        first = self.last_seq + 1
        now = time.time()
        rows = [
            (first + i, e.id, e.type, _body(e, first + i), int(e.type in self.droppable), now)
            for i, e in enumerate(events)
        ]
        last = first + len(rows) - 1
        try:
            with self._transaction():
                self._conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)", rows)
                self._conn.execute("UPDATE meta SET value = ? WHERE key = 'last_seq'", (last,))
        except sqlite3.Error as exc:
            if _is_full(exc):
                raise _Full(str(exc)) from exc
            raise OutboxError(f"cannot store {len(rows)} events: {exc}") from exc
        self.last_seq = last
        return [r[0] for r in rows]

    def _on_full(self, reason: str) -> None:
        # Logged when holding starts, whether or not dropping (step 1) came first.
        if not self._holding:
            log.error("the outbox %s is full (%s): holding events in memory", self.path, reason)
            self._holding = True
        self._set_full(True)
        overflow = len(self._held) - HELD_MAX
        if overflow > 0:
            for _ in range(overflow):
                self._held.popleft()
            log.error("outbox full and %d events held in memory: lost %d", HELD_MAX, overflow)
            self._bump_meta("lost", overflow)

    def _set_full(self, full: bool) -> None:
        if full and not self._full:
            log.error(
                "the outbox %s is nearly full (%d of %s bytes): dropping %s events",
                self.path,
                _used_bytes(self._conn),
                self.max_bytes,
                ", ".join(sorted(self.droppable)) or "no",
            )
        elif self._full and not full:
            log.warning("the outbox %s has room again", self.path)
        self._full = full

    def _count_dropped(self, shed: Counter[str]) -> None:
        # Best effort: the counter must not fail where the events themselves could not be stored.
        try:
            with self._transaction():
                self._conn.executemany(
                    "INSERT INTO dropped VALUES (?, ?) "
                    "ON CONFLICT (type) DO UPDATE SET count = count + excluded.count",
                    list(shed.items()),
                )
        except sqlite3.Error as exc:
            log.error("cannot count %d dropped events: %s", shed.total(), exc)

    def _bump_meta(self, key: str, by: int) -> None:
        try:
            with self._transaction():
                self._conn.execute("UPDATE meta SET value = value + ? WHERE key = ?", (by, key))
        except sqlite3.Error as exc:
            log.error("cannot count %d %s events: %s", by, key, exc)

    def _transaction(self) -> _Transaction:
        return _Transaction(self._conn)


def _connect(path: Path, synchronous: str, *, readonly: bool = False) -> sqlite3.Connection:
    # check_same_thread=False: opened here, used on the writer thread (or the loop's, to read).
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'full' else 'NORMAL'}")
    conn.execute("PRAGMA busy_timeout=5000")
    conn.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
    if readonly:
        conn.execute("PRAGMA query_only=1")
    return conn


def _meta(conn: sqlite3.Connection, key: str) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return int(row[0])


def _used_bytes(conn: sqlite3.Connection) -> int:
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    return int((pages - free) * size)


def _body(event: AnyEvent, seq: int) -> str:
    return event.model_copy(update={"seq": seq}).to_json()


class _Full(Exception):
    """SQLITE_FULL: the disk or ``max_page_count`` left no room for the transaction."""


def _is_full(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "full" in str(exc)


class _Transaction:
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
