"""The ``Outbox``: what the rest of the gateway calls, from the event loop or any thread.

Every write (events in, deliveries out, the command ledger's claims) runs on one writer thread
that owns the writing connection, in the order it was asked for (``writer.py``). A commit with
``synchronous=FULL`` waits for an fsync, milliseconds on an SD card and now and then a hundred;
on the event loop that wait would hold up everything else, a shelf display's action included.
The loop awaits ``store``, ``delivered`` and ``transact`` instead, and reads (``pending``,
``backlog``) on a second, read-only connection, which WAL never blocks. The synchronous
``append`` and ``mark_delivered`` hand their work to the same thread and wait for it, so the
order of writes is the order of calls whichever form is used.

The API is total: none of these raise because of the disk. A failure is a state in ``health()``
(and the status), events wait in memory, and ``watch`` retries every ``RETRY_S`` until storage
is ok again. The one exception is ``transact``, whose caller must know that nothing was
recorded: it raises ``StorageUnavailable``. ``open`` raises only for a database whose schema is
newer than this version (a downgrade: the operator's to fix, not the disk's).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
import threading
from collections.abc import Callable, Collection, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, TypeVar

from gateway.errors import OutboxError, StorageUnavailable
from gateway.events.model import AnyEvent
from gateway.outbox.files import RESERVE_BYTES
from gateway.outbox.health import Backlog, StorageHealth
from gateway.outbox.ranges import SeqRanges
from gateway.outbox.schema import connect, meta, used_bytes
from gateway.outbox.writer import DEFAULT_DROPPABLE, Options, Writer

if TYPE_CHECKING:
    from gateway.config.sections import StorageConfig

log = logging.getLogger(__name__)

_T = TypeVar("_T")

RETRY_S: Final = 1.0  # while storage is not ok, retry this often


@dataclass(frozen=True, slots=True)
class Row:
    seq: int
    type: str
    body: str


class Outbox:
    def __init__(self, path: Path, options: Options) -> None:
        self.path = path
        self.max_bytes = options.max_bytes
        self.droppable = options.droppable
        self._synchronous = options.synchronous
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox-writer")
        self._writer = Writer(path, options, on_open=self._open_reader)
        # The loop and the metrics endpoint's thread both read: one statement at a time.
        self._reader: sqlite3.Connection | None = None
        self._read_lock = threading.Lock()
        self._closed = False
        # Rows acknowledged and not yet handed to the writer (``delivered_later``); the loop's.
        self._to_delete: list[int] = []
        self._to_delete_ranges = SeqRanges()

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        synchronous: str = "full",
        max_bytes: int | None = None,
        droppable: Collection[str] = DEFAULT_DROPPABLE,
        busy_timeout_s: float = 5.0,
        reserve_bytes: int = RESERVE_BYTES,
    ) -> Outbox:
        """The outbox at ``path``, open, or failed and retried (see ``health``)."""
        options = Options(
            synchronous, max_bytes, frozenset(droppable), busy_timeout_s, reserve_bytes
        )
        outbox = cls(path, options)
        try:
            outbox._pool.submit(outbox._writer.start).result()
        except OutboxError:
            outbox._pool.shutdown()
            raise
        return outbox

    @classmethod
    def from_config(cls, storage: StorageConfig) -> Outbox:
        return cls.open(
            storage.path,
            synchronous=storage.synchronous,
            max_bytes=storage.max_bytes,
            droppable=storage.droppable,
        )

    @property
    def last_seq(self) -> int:
        return self._writer.last_seq

    def health(self) -> StorageHealth:
        return self._writer.health

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Writes already asked for (a cancelled pipeline's last store) finish first.
        self._call(self._writer.delete, None, self._take_deletes())
        self._call(self._writer.close, None)
        self._pool.shutdown(wait=True)
        with self._read_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None

    # -- writes

    def append(self, events: Sequence[AnyEvent]) -> list[int]:
        """Store events (after any held ones) in order; returns the new seqs.

        Never raises: what cannot be stored is dropped (droppable types), held in memory, or,
        beyond ``HELD_MAX``, lost, and each case is counted. Blocks the caller until the commit;
        the event loop awaits ``store`` instead.
        """
        return self._call(self._writer.append, [], list(events))

    async def store(self, events: Sequence[AnyEvent]) -> list[int]:
        """``append`` without holding up the event loop during the commit. The rows given to
        ``delivered_later`` meanwhile are deleted in the same trip to the writer thread."""
        deletes = self._take_deletes()
        try:
            return await self._off_loop(self._append_then_delete, [], list(events), deletes)
        finally:
            self._deletes_taken()

    def mark_delivered(self, seqs: Iterable[int]) -> None:
        self._call(self._writer.delete, None, list(seqs))

    async def delivered(self, seqs: Iterable[int]) -> None:
        """``mark_delivered`` without holding up the event loop. Rows that cannot be deleted
        now are remembered, skipped by ``pending`` and deleted once writes work."""
        self.delivered_later(seqs)
        await self.flush_delivered()

    def delivered_later(self, seqs: Iterable[int]) -> None:
        """Rows delivered, deleted with the next ``store`` or ``flush_delivered``: a handover
        to the writer thread wakes the loop when it is done, and a shop stores events about
        as often as it delivers them, so one handover serves both. ``pending`` and the backlog
        skip the rows from now on. A crash before the delete sends them again (at least
        once), as a crash between a PUBACK and its delete always could."""
        seqs = list(seqs)
        self._to_delete += seqs
        self._to_delete_ranges = self._to_delete_ranges.added(seqs)

    @property
    def waiting_deletes(self) -> int:
        """Rows given to ``delivered_later`` and not yet handed to the writer."""
        return len(self._to_delete)

    async def flush_delivered(self) -> None:
        """Delete now what ``delivered_later`` was given."""
        deletes = self._take_deletes()
        if not deletes:
            return
        try:
            await self._off_loop(self._writer.delete, None, deletes)
        finally:
            self._deletes_taken()

    def _take_deletes(self) -> list[int]:
        deletes, self._to_delete = self._to_delete, []
        return deletes

    def _deletes_taken(self) -> None:
        # The writer has recorded the taken rows (``Writer.undeleted`` until they are gone):
        # from here its record is the one that skips them.
        self._to_delete_ranges = SeqRanges().added(self._to_delete)

    def _append_then_delete(self, events: list[AnyEvent], deletes: list[int]) -> list[int]:
        seqs = self._writer.append(events)
        if deletes:
            self._writer.delete(deletes)
        return seqs

    async def transact(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """``work(conn)`` in one transaction on the writer thread (the command ledger's table
        lives in this database, under the same size limit). Raises StorageUnavailable."""
        loop = asyncio.get_running_loop()
        return await asyncio.shield(loop.run_in_executor(self._pool, self._transact, work))

    async def watch(self) -> None:
        """Retry what failed every ``RETRY_S`` while storage is not ok; runs until cancelled."""
        while True:
            await asyncio.sleep(RETRY_S)
            if self.health().state != "ok":
                await self._off_loop(self._writer.retry, None)

    def retry(self) -> None:
        """One retry now, whatever the backoff (``watch`` retries on its own)."""
        self._call(functools.partial(self._writer.retry, now=True), None)

    def pragma(self, name: str) -> object:
        """A PRAGMA's value on the writing connection (``synchronous``, ``user_version``)."""
        if not name.isidentifier():
            raise ValueError(f"not a PRAGMA name: {name!r}")

        def read(conn: sqlite3.Connection) -> object:
            return conn.execute(f"PRAGMA {name}").fetchone()[0]

        return self._pool.submit(self._transact, read).result()

    def _transact(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        try:
            return self._writer.run(work)
        except StorageUnavailable:
            raise
        except Exception as exc:
            # A bug in ``work``: it costs this one record (its caller refuses), not the daemon.
            log.exception("the outbox writer failed")
            raise StorageUnavailable(f"internal error: {type(exc).__name__}: {exc}") from exc

    def _call(self, work: Callable[..., _T], default: _T, *args: object) -> _T:
        return self._pool.submit(self._guarded, work, default, *args).result()

    async def _off_loop(self, work: Callable[..., _T], default: _T, *args: object) -> _T:
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._pool, self._guarded, work, default, *args)
        # Once handed over, a write completes even if the caller is cancelled (shutdown): events
        # the pipeline has taken from the readers must reach the file, not vanish with the task.
        return await asyncio.shield(future)

    def _guarded(self, work: Callable[..., _T], default: _T, *args: object) -> _T:
        # The writer turns what SQLite and the OS raise into states. Anything else is a bug, and
        # it must cost a failed state with its traceback in the journal, not the daemon.
        try:
            return work(*args)
        except Exception as exc:
            log.exception("the outbox writer failed")
            self._writer.fail(f"internal error: {type(exc).__name__}: {exc}")
            return default

    # -- reads, on the loop's (or the metrics thread's) side

    def pending(self, after: int = 0, limit: int = 1000) -> list[Row]:
        """Undelivered rows after ``after`` in seq order, skipping rows delivered but not yet
        deleted; [] when the file cannot be read."""
        skip, soon = self._writer.undeleted, self._to_delete_ranges
        rows: list[Row] = []
        with self._read_lock:
            while self._reader is not None:
                page = self._read_page(self._reader, after, limit)
                rows += [row for row in page if row.seq not in skip and row.seq not in soon]
                if rows or len(page) < limit or not page:
                    return rows
                after = skip.end_of(page[-1].seq) or page[-1].seq
        return rows

    def backlog(self) -> Backlog:
        writer = self._writer
        skip = writer.undeleted
        soon = self._to_delete_ranges
        if soon:
            skip = SeqRanges([*skip, *soon])
        with self._read_lock:
            figures = self._read_figures(skip) if self._reader is not None else None
        count, oldest, dropped, lost, used = figures or (0, None, {}, 0, 0)
        for kind, n in writer.unrecorded_dropped.items():
            dropped[kind] = dropped.get(kind, 0) + n
        health = writer.health
        return Backlog(
            count=count,
            oldest_accepted=oldest,
            last_seq=writer.last_seq,
            bytes=used,
            max_bytes=self.max_bytes,
            full=writer.dropping or bool(writer.held) or writer.short_of_space,
            held=len(writer.held),
            dropped=dropped,
            lost=lost + writer.unrecorded_lost,
            storage=health,
        )

    def used_bytes(self) -> int:
        with self._read_lock:
            try:
                return 0 if self._reader is None else used_bytes(self._reader)
            except sqlite3.Error:
                return 0

    def _read_page(self, reader: sqlite3.Connection, after: int, limit: int) -> list[Row]:
        try:
            cur = reader.execute(
                "SELECT seq, type, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, limit),
            )
            return [Row(*r) for r in cur]
        except sqlite3.Error as exc:
            log.warning("cannot read the outbox: %s", exc)
            return []

    def _read_figures(
        self, skip: SeqRanges
    ) -> tuple[int, float | None, dict[str, int], int, int] | None:
        assert self._reader is not None
        conn = self._reader
        try:
            count = conn.execute("SELECT count(*) FROM events").fetchone()[0]
            for low, high in skip:  # delivered, not deleted yet: not backlog
                count -= conn.execute(
                    "SELECT count(*) FROM events WHERE seq BETWEEN ? AND ?", (low, high)
                ).fetchone()[0]
            oldest = self._oldest(conn, skip)
            dropped = dict(conn.execute("SELECT type, count FROM dropped ORDER BY type"))
            return count, oldest, dropped, meta(conn, "lost"), used_bytes(conn)
        except sqlite3.Error as exc:
            log.warning("cannot read the outbox: %s", exc)
            return None

    def _oldest(self, conn: sqlite3.Connection, skip: SeqRanges) -> float | None:
        after = 0
        while True:
            row = conn.execute(
                "SELECT seq, accepted FROM events WHERE seq > ? ORDER BY seq LIMIT 1", (after,)
            ).fetchone()
            if row is None or row[0] not in skip:
                return None if row is None else float(row[1])
            after = skip.end_of(row[0]) or row[0]

    def _open_reader(self) -> None:
        # On the writer thread, each time it has (re)opened the database.
        with self._read_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
            try:
                self._reader = connect(self.path, self._synchronous, readonly=True)
            except sqlite3.Error as exc:
                log.error("cannot open the outbox %s to read: %s", self.path, exc)
