"""The writer thread's side of the outbox: the one connection that writes, and what happens when
the disk says no.

Every method here runs on the writer thread, one call at a time, so this state needs no lock;
other threads read only values that are replaced whole (``undeleted``, ``health``, the counters)
or read in one step (``len(held)``).

A failed write is a state, not an exception. Lack of space (``max_page_count`` or the disk) makes
storage ``full``; anything else ``failed``, and unless another connection merely holds the lock,
the database is reopened, and checked again, on the next retry. Either way:

- events wait in memory, in order, up to ``HELD_MAX`` (beyond it the oldest are lost, counted);
  while a write has failed, new events join them without another write being tried;
- delivered rows that cannot be deleted are remembered (``undeleted``), so ``pending`` skips them,
  and deleted once writes work; on a full disk the reserve is released for that delete;
- counts of dropped and lost events that cannot be written wait in memory as well;
- ``retry`` (every second while storage is not ok, from ``Outbox.watch``) reopens, deletes, stores
  what waits and allocates the reserve again; the first write that works clears the failure.
"""

from __future__ import annotations

import itertools
import logging
import sqlite3
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeVar

from gateway.errors import OutboxError, StorageUnavailable
from gateway.events.model import AnyEvent
from gateway.outbox.files import RESERVE_BYTES, Reserve, SeqCeiling, disk_free
from gateway.outbox.health import StorageHealth, StorageState
from gateway.outbox.opening import Opened, Settings, open_database
from gateway.outbox.ranges import SeqRanges
from gateway.outbox.schema import Transaction, is_full, is_transient, used_bytes
from gateway.runtime.supervise import Backoff

log = logging.getLogger(__name__)

_T = TypeVar("_T")

HIGH_WATER: Final = 0.8  # above this share of max_bytes, droppable events are dropped
HELD_MAX: Final = 10_000  # events kept in memory while they cannot be stored
DEFAULT_DROPPABLE: Final = frozenset({"shelf.weight"})
CHUNK: Final = 1000  # events per insert: small transactions still fit where a large one would not
LOW_DISK_BYTES: Final = 2 << 20  # a SQLITE_FULL with less than this free is the disk's doing


@dataclass(frozen=True, slots=True)
class Options:
    synchronous: str = "full"
    max_bytes: int | None = None
    droppable: frozenset[str] = DEFAULT_DROPPABLE
    busy_timeout_s: float = 5.0
    reserve_bytes: int = RESERVE_BYTES


@dataclass(frozen=True, slots=True)
class _Problem:
    full: bool  # lack of space; otherwise storage failed
    reason: str
    reopen: bool = False  # close and reopen (and check) the database before the next try


class Writer:
    def __init__(
        self,
        path: Path,
        options: Options,
        *,
        on_open: Callable[[], None],
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.options = options
        self._on_open = on_open  # the outbox opens its reading connection anew
        self._wall = wall
        self.conn: sqlite3.Connection | None = None
        self.last_seq = 0
        self.held: deque[AnyEvent] = deque()
        self.undeleted = SeqRanges()  # delivered, not yet deleted from the file
        self.unrecorded_lost = 0
        self.unrecorded_dropped: Counter[str] = Counter()
        self.dropping = False  # droppable events are dropped (space is short)
        self.problem: _Problem | None = _Problem(False, f"{path} is not open yet")
        self.reserve = Reserve(Path(f"{path}.reserve"), options.reserve_bytes)
        self.ceiling = SeqCeiling(Path(f"{path}.seq"))
        self.health = StorageHealth()
        self._moved: Opened | None = None  # the opening that moved a damaged file aside
        self._sync_level = 2
        self._holding = False
        # Why events are held: a later write that succeeds (a delete, a touch) clears the problem
        # before the held events are stored, and the status must still say what holds them.
        self._held_because = ""
        self._reopen_backoff = Backoff(initial=1.0, cap=30.0)
        self._reopen_at = 0.0  # monotonic: no reopening before

    @property
    def short_of_space(self) -> bool:
        """The last write failed for lack of space (the limit or the disk)."""
        problem = self.problem
        return problem is not None and problem.full

    # -- entry points

    def start(self) -> None:
        """Open the database. Only a schema newer than this version raises (OutboxError)."""
        self._open(strict=True)
        # After the open, which makes the directory on a first start: before it, a missing
        # directory has no free space to measure and the reserve would stay absent.
        self.reserve.ensure()
        self._note_health()

    def append(self, events: Sequence[AnyEvent]) -> list[int]:
        """Store events after any held ones; returns the new seqs. What cannot be stored is
        dropped (droppable types), held, or beyond ``HELD_MAX`` lost, each counted."""
        self.held.extend(self._shed(events))
        if self._writable():
            seqs = self._store_held()
        else:
            seqs = []
            self._report_holding(0)
        self._trim_held()
        self._note_health()
        return seqs

    def delete(self, seqs: Sequence[int]) -> None:
        if seqs:
            self.undeleted = self.undeleted.added(seqs)
        # A full store still tries: deleting is how it makes room.
        if self.undeleted and self.conn is not None and (self.problem is None or self.problem.full):
            self._delete_undeleted()
        self._note_health()

    def run(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """``work`` in one transaction (the command ledger's); StorageUnavailable when storage
        cannot run it. Failed storage is not tried (a locked database would hold this thread
        for the busy timeout); full storage is, since a replay is recognised by a read."""
        if self.conn is None or (self.problem is not None and not self.problem.full):
            raise self._unavailable()
        try:
            with Transaction(self.conn):
                result = work(self.conn)
        except sqlite3.Error as exc:
            self._on_error(exc, "cannot record a command")
            raise self._unavailable() from exc
        finally:
            self._note_health()
        if not self.dropping and self._above_high_water():
            self._set_dropping(True)  # the rest is kept for events; the ledger takes no more
            self._note_health()
        return result

    def retry(self, *, now: bool = False) -> None:
        """Reopen if needed, then store, delete and count what waits. Reopening backs off (1 s
        doubling to 30 s) unless ``now``."""
        reopen = self.conn is None or (self.problem is not None and self.problem.reopen)
        if reopen and not now and time.monotonic() < self._reopen_at:
            return  # opening checks the whole file: not every second on a failing disk
        if reopen:
            self._close_conn()
        if self.conn is not None or self._open():
            self._catch_up()
        self._note_health()

    def fail(self, reason: str) -> None:
        """An unexpected error on this thread (a bug): storage is failed until a retry reopens
        it, and what waited in memory is dropped, counted, so that it cannot fail every retry."""
        if self.held:
            log.error("%d events waiting in memory are lost to it", len(self.held))
            self.unrecorded_lost += len(self.held)
            self.held.clear()
        self.undeleted = SeqRanges()  # those rows are sent again: a repeat, dropped by id
        self.problem = _Problem(False, reason, reopen=True)
        self._note_health()

    def close(self) -> None:
        if self.conn is not None:
            self._catch_up()  # a last try for what waits in memory
        if self.held:
            log.error("closing the outbox: %d events waiting in memory are lost", len(self.held))
            self.unrecorded_lost += len(self.held)
            self.held.clear()
            self._record_counters(force=True)
        if self.unrecorded_lost:
            log.error("%d lost events could not be counted in the outbox", self.unrecorded_lost)
        self._close_conn()

    # -- opening

    def _open(self, *, strict: bool = False) -> bool:
        """Open the database, or record why not; ``strict``: a newer schema raises."""
        settings = Settings(
            self.options.synchronous, self.options.max_bytes, self.options.busy_timeout_s
        )
        for attempt in range(2):
            try:
                opened = open_database(self.path, settings, self.ceiling, self._wall())
            except OutboxError as exc:
                if strict:
                    raise
                self.problem = _Problem(False, str(exc), reopen=True)
                break
            except (sqlite3.Error, OSError) as exc:
                self._set_problem(exc, f"cannot open {self.path}", reopen=True)
                if attempt or not (is_full(exc) and self._release_reserve()):
                    break
            else:
                self._adopt(opened)
                self._reopen_backoff.reset()
                return True
        self._reopen_at = time.monotonic() + self._reopen_backoff.next()
        return False

    def _adopt(self, opened: Opened) -> None:
        self.conn = opened.conn
        self.last_seq = opened.last_seq
        self._sync_level = opened.conn.execute("PRAGMA synchronous").fetchone()[0]
        if opened.moved_aside is not None:
            self._moved = opened
            self.undeleted = SeqRanges()  # they were rows of the file moved aside
        self.ceiling.cover(self.last_seq)
        self.problem = None
        self._on_open()

    def _close_conn(self) -> None:
        if self.conn is not None:
            conn, self.conn = self.conn, None
            try:
                conn.close()
            except sqlite3.Error as exc:
                log.warning("closing the outbox connection: %s", exc)

    # -- storing

    def _writable(self) -> bool:
        return self.conn is not None and self.problem is None

    def _store_held(self) -> list[int]:
        seqs: list[int] = []
        while self.held and self.conn is not None:
            chunk = list(itertools.islice(self.held, CHUNK))
            stored = self._insert(chunk)
            if stored is None:
                break
            seqs += stored
            for _ in chunk:
                self.held.popleft()
        self._report_holding(len(seqs))
        if not self.held and self.problem is None:
            self._set_dropping(self._above_high_water())
        return seqs

    def _insert(self, events: Sequence[AnyEvent]) -> list[int] | None:
        first = self.last_seq + 1
        now = self._wall()
        droppable = self.options.droppable
        rows = [
            (first + i, e.id, e.type, _body(e, first + i), int(e.type in droppable), now)
            for i, e in enumerate(events)
        ]
        last = first + len(rows) - 1
        self.ceiling.cover(last)

        def insert(conn: sqlite3.Connection) -> None:
            conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)", rows)
            conn.execute("UPDATE meta SET value = ? WHERE key = 'last_seq'", (last,))

        if not self._write(insert, f"cannot store {len(rows)} events"):
            return None
        self.last_seq = last
        return [r[0] for r in rows]

    def _write(self, work: Callable[[sqlite3.Connection], object], what: str) -> bool:
        assert self.conn is not None
        try:
            with Transaction(self.conn):
                work(self.conn)
        except sqlite3.Error as exc:
            self._on_error(exc, what)
            return False
        self.problem = None
        return True

    def _report_holding(self, stored: int) -> None:
        if self.held and not self._holding:
            log.error(
                "the outbox %s cannot store events (%s): holding events in memory",
                self.path,
                self._reason(),
            )
            self._holding = True
        elif not self.held and self._holding:
            log.warning("the outbox took the %d events held in memory", stored)
            self._holding = False

    def _trim_held(self) -> None:
        overflow = len(self.held) - HELD_MAX
        if overflow <= 0:
            return
        for _ in range(overflow):
            self.held.popleft()
        log.error("outbox full and %d events held in memory: lost %d", HELD_MAX, overflow)
        self.unrecorded_lost += overflow
        self._record_counters()

    def _shed(self, events: Sequence[AnyEvent]) -> list[AnyEvent]:
        """Drop droppable events while space is short, counting them per type."""
        if not (self.dropping or self.held) and not self._above_high_water():
            return list(events)
        droppable = self.options.droppable
        shed = Counter[str](e.type for e in events if e.type in droppable)
        if shed:
            self._set_dropping(True)
            self.unrecorded_dropped = self.unrecorded_dropped + shed
            self._record_counters()
        return [e for e in events if e.type not in droppable]

    def _above_high_water(self) -> bool:
        limit = self.options.max_bytes
        return limit is not None and self.conn is not None and self._used() > HIGH_WATER * limit

    def _set_dropping(self, dropping: bool) -> None:
        if dropping and not self.dropping:
            types = ", ".join(sorted(self.options.droppable)) or "no"
            if self.problem is not None:
                why = f"cannot store events ({self.problem.reason})"
            else:
                why = f"is nearly full ({self._used()} of {self.options.max_bytes} bytes)"
            log.error("the outbox %s %s: dropping %s events", self.path, why, types)
        elif self.dropping and not dropping:
            log.warning("the outbox %s has room again", self.path)
        self.dropping = dropping

    def _record_counters(self, *, force: bool = False) -> None:
        lost, dropped = self.unrecorded_lost, self.unrecorded_dropped
        if not (lost or dropped) or self.conn is None or not (force or self.problem is None):
            return

        def count(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT INTO dropped VALUES (?, ?) "
                "ON CONFLICT (type) DO UPDATE SET count = count + excluded.count",
                list(dropped.items()),
            )
            conn.execute("UPDATE meta SET value = value + ? WHERE key = 'lost'", (lost,))

        # Counted in memory until then: a counter must not fail where the events could not.
        if self._write(count, f"cannot count {lost} lost and {dropped.total()} dropped events"):
            self.unrecorded_lost, self.unrecorded_dropped = 0, Counter()

    # -- deleting

    def _delete_undeleted(self) -> None:
        if not self._delete_once() and self._release_reserve():
            self._delete_once()  # the reserve's space lets the delete through
        if self.undeleted:
            return
        self._record_counters(force=True)
        if self.held:
            self._store_held()
        elif self.dropping:
            self._set_dropping(self._above_high_water())

    def _delete_once(self) -> bool:
        assert self.conn is not None
        ranges = list(self.undeleted)
        # A delete lost to a power cut only means a repeat, which consumers drop by id: no fsync
        # for it (the next event commit syncs it anyway). Fewer writes to the SD card.
        self._synchronous("NORMAL")
        try:
            done = self._write(
                lambda conn: conn.executemany(
                    "DELETE FROM events WHERE seq BETWEEN ? AND ?", ranges
                ),
                f"cannot delete {len(self.undeleted)} delivered events",
            )
        finally:
            self._synchronous(str(self._sync_level))
        if done:
            self.undeleted = SeqRanges()
        return done

    def _synchronous(self, level: str) -> None:
        assert self.conn is not None
        try:
            self.conn.execute(f"PRAGMA synchronous={level}")
        except sqlite3.Error as exc:
            log.warning("cannot set synchronous=%s on the outbox: %s", level, exc)

    def _release_reserve(self) -> bool:
        """On a full disk, give the reserve back so that the write in hand can proceed."""
        if self.problem is None or not self.problem.full:
            return False
        if disk_free(self.path.parent) >= LOW_DISK_BYTES or not self.reserve.release():
            return False
        log.error(
            "the disk under %s is full: released the %d-byte reserve to delete delivered events",
            self.path,
            self.reserve.size,
        )
        return True

    # -- failures and health

    def _catch_up(self) -> None:
        if self.undeleted:
            self._delete_undeleted()
        if self.held:
            self._store_held()
        self._record_counters(force=True)
        if self.problem is not None and self.conn is not None:
            # Nothing waited, or it did not fit: a write that changes nothing tells whether the
            # failure is over (a lock released, a disk remounted writable).
            self._write(_touch, "cannot write")
        if self.problem is None:
            self.reserve.ensure()  # logs when it allocates

    def _unavailable(self) -> StorageUnavailable:
        self._note_health()
        return StorageUnavailable(f"storage {self.health.state}: {self.health.reason}")

    def _on_error(self, exc: sqlite3.Error, what: str) -> None:
        self._set_problem(exc, what, reopen=not is_transient(exc))

    def _set_problem(self, exc: BaseException, what: str, *, reopen: bool) -> None:
        if is_full(exc):
            self.problem = _Problem(True, self._full_reason(exc))
        else:
            self.problem = _Problem(False, f"{what}: {exc}", reopen)
        self._held_because = self.problem.reason

    def _full_reason(self, exc: BaseException) -> str:
        free = disk_free(self.path.parent)
        limit = self.options.max_bytes
        if limit is not None and free >= LOW_DISK_BYTES and self.conn is not None:
            return f"the outbox is at its limit ({self._used()} of {limit} bytes used): {exc}"
        return f"the disk is full ({free} bytes free in {self.path.parent}): {exc}"

    def _state(self) -> tuple[StorageState, str | None]:
        if self.conn is None or (self.problem is not None and not self.problem.full):
            return "failed", self._reason()
        if self.problem is not None or self.held or self.dropping or not self.reserve.present:
            return "full", self._reason()
        return "ok", None

    def _reason(self) -> str:
        if self.problem is not None:
            return self.problem.reason
        if self.conn is None:
            return f"the outbox {self.path} is closed"
        if self.held:
            return f"{len(self.held)} events wait in memory ({self._held_because})"
        if self.dropping:
            used, limit = self._used(), self.options.max_bytes
            return f"the outbox is above {HIGH_WATER:.0%} of its limit ({used} of {limit} bytes)"
        free = disk_free(self.path.parent)
        return (
            f"the disk is nearly full ({free} bytes free in {self.path.parent}): "
            f"no room for the {self.reserve.size}-byte reserve"
        )

    def _note_health(self) -> None:
        state, reason = self._state()
        before = self.health
        if state != before.state:
            if state == "ok":
                log.warning("outbox storage is ok again")
            else:
                log.error("outbox storage %s: %s", state, reason)
        since = before.since if state == before.state else self._wall()
        opened = self._moved
        self.health = StorageHealth(
            state=state,
            reason=reason,
            since=None if state == "ok" else since,
            reserve=self.reserve.present,
            moved_aside=None if opened is None else opened.moved_aside,
            stranded=None if opened is None else opened.stranded,
        )

    def _used(self) -> int:
        try:
            return 0 if self.conn is None else used_bytes(self.conn)
        except sqlite3.Error:
            return 0


def _touch(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE meta SET value = value WHERE key = 'last_seq'")


def _body(event: AnyEvent, seq: int) -> str:
    return event.model_copy(update={"seq": seq}).to_json()
