"""The database the consumers write into, SQLite or PostgreSQL behind one small interface.

One transaction per batch of messages: the events, the ``seq`` conflicts they reveal and the
loss watch's starting points are committed together, and the consumer acknowledges the
messages only after that commit. Duplicates from at-least-once delivery are dropped by the
unique ``id`` (``ON CONFLICT DO NOTHING``); ``(store, gateway, seq)`` is unique too, so an event
whose ``seq`` is held by another ``id`` is not stored but flagged in ``seq_conflicts`` (the
gateway never does that: it is a bug report, kept with its payload).

The SQL is written once, with ``%s`` placeholders (psycopg's); the SQLite backend translates
them. What differs per backend is the DDL, the fast insert path and how a timestamp is kept.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from central.records import EventRow, StatusRow

IN_CHUNK: Final = 500  # ids per IN (...) list


class StoreError(Exception):
    """A database URL the consumer cannot use, or a database it cannot open."""


@dataclass(frozen=True, slots=True)
class Inserted:
    stored: int
    repeats: int  # same id as a stored event: dropped
    conflicts: int  # a seq (or id) already held by another event: flagged


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as the funnel reads it back."""

    store: str
    gateway: str
    seq: int
    type: str
    ts: float  # unix seconds
    zone: str | None
    subject_kind: str | None
    subject_id: str | None
    payload: str


class Store(abc.ABC):
    """A DB-API connection with the schema in place; one per consumer, used from one thread."""

    payload_text = "payload"  # the SQL that reads the payload back as JSON text

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    # -- what a backend provides -----------------------------------------------------------

    @abc.abstractmethod
    def sql(self, text: str) -> str:
        """``text`` with this backend's placeholders."""

    @abc.abstractmethod
    def _insert_events(self, cur: Any, rows: Sequence[EventRow], received_at: float) -> int:
        """Insert ``rows``, skipping any that conflict; the number inserted."""

    @abc.abstractmethod
    def _ts_param(self, ts: datetime) -> object:
        """How this backend stores an event's ``ts``."""

    @abc.abstractmethod
    def _ts_value(self, value: object) -> float:
        """Unix seconds from what this backend returns for ``ts``."""

    @abc.abstractmethod
    def is_data_error(self, exc: Exception) -> bool:
        """Whether the database refused the data itself (retrying cannot help)."""

    @abc.abstractmethod
    def is_unreachable(self, exc: Exception) -> bool:
        """Whether the database cannot be used now (down, locked, full): retry later."""

    @abc.abstractmethod
    def reconnect(self) -> None:
        """After ``is_unreachable``: whatever the next attempt needs."""

    @abc.abstractmethod
    @contextmanager
    def exclusive(self) -> Iterator[Any]:
        """A transaction that no other consumer's ``exclusive`` runs beside (the loss watch);
        yields a cursor, or None when another holds it (the caller skips its turn)."""

    # -- shared ------------------------------------------------------------------------------

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        cur = self._conn.cursor()
        try:
            yield cur
        except BaseException:
            self._conn.rollback()
            raise
        else:
            self._conn.commit()
        finally:
            cur.close()

    def insert(self, rows: Sequence[EventRow], received_at: float) -> Inserted:
        with self.transaction() as cur:
            stored = self._insert_events(cur, rows, received_at)
            conflicts = 0
            if stored < len(rows):
                conflicts = self._flag_conflicts(cur, rows, received_at)
            self._note_starts(cur, rows, received_at)
        return Inserted(stored, len(rows) - stored - conflicts, conflicts)

    def record_status(self, rows: Sequence[StatusRow], received_at: float) -> list[StatusRow]:
        """Gateway online/offline history; the rows that are news. Every member sees the
        retained status, so a repeat (same gateway, state and ``ts``) is dropped."""
        new = []
        with self.transaction() as cur:
            for r in rows:
                cur.execute(
                    self.sql(
                        "INSERT INTO gateway_status (store, gateway, state, ts, received_at) "
                        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
                    ),
                    (r.store, r.gateway, r.state, self._ts_param(r.ts), received_at),
                )
                if cur.rowcount:
                    new.append(r)
        return new

    def events_between(self, start: datetime, end: datetime) -> list[StoredEvent]:
        """Every event with ``start <= ts < end``, in (store, gateway, seq) order."""
        columns = (
            f"store, gateway, seq, type, ts, zone, subject_kind, subject_id, {self.payload_text}"
        )
        with self.transaction() as cur:
            cur.execute(
                self.sql(
                    f"SELECT {columns} FROM events WHERE ts >= %s AND ts < %s "  # noqa: S608
                    "ORDER BY store, gateway, seq"
                ),
                (self._ts_param(start), self._ts_param(end)),
            )
            found = cur.fetchall()
        return [
            StoredEvent(r[0], r[1], r[2], r[3], self._ts_value(r[4]), r[5], r[6], r[7], r[8])
            for r in found
        ]

    def latest_ts(self) -> float | None:
        """Unix seconds of the newest event's ``ts``; None when there is none."""
        found = self.query("SELECT max(ts) FROM events")
        return None if not found or found[0][0] is None else self._ts_value(found[0][0])

    def query(self, text: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """Rows of a read-only query written with ``%s`` placeholders (tests, reports)."""
        with self.transaction() as cur:
            cur.execute(self.sql(text), tuple(params))
            return list(cur.fetchall())

    def _flag_conflicts(self, cur: Any, rows: Sequence[EventRow], received_at: float) -> int:
        held = self._keys_of(cur, [r.id for r in rows])
        flagged = 0
        for row in rows:
            key = held.get(row.id)
            if key == (row.store, row.gateway, row.seq):
                continue  # stored now, or a repeat
            holder = row.id if key is not None else self._holder(cur, row)
            cur.execute(
                self.sql(
                    "INSERT INTO seq_conflicts (id, store, gateway, seq, held_by, payload, "
                    "seen_at) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
                ),
                (row.id, row.store, row.gateway, row.seq, holder, row.payload, received_at),
            )
            flagged += 1
        return flagged

    def _keys_of(self, cur: Any, ids: Sequence[str]) -> dict[str, tuple[str, str, int]]:
        keys = {}
        for at in range(0, len(ids), IN_CHUNK):
            chunk = ids[at : at + IN_CHUNK]
            marks = ", ".join(["%s"] * len(chunk))  # placeholders only: no text from outside
            cur.execute(
                self.sql(f"SELECT id, store, gateway, seq FROM events WHERE id IN ({marks})"),  # noqa: S608
                chunk,
            )
            keys.update({r[0]: (r[1], r[2], r[3]) for r in cur.fetchall()})
        return keys

    def _holder(self, cur: Any, row: EventRow) -> str | None:
        cur.execute(
            self.sql("SELECT id FROM events WHERE store = %s AND gateway = %s AND seq = %s"),
            (row.store, row.gateway, row.seq),
        )
        found = cur.fetchone()
        return None if found is None else str(found[0])

    def _note_starts(self, cur: Any, rows: Sequence[EventRow], received_at: float) -> None:
        """The loss watch starts each gateway's line below the lowest ``seq`` stored in its
        first moments (see ``central.losswatch``)."""
        lowest: dict[tuple[str, str], int] = {}
        for r in rows:
            key = (r.store, r.gateway)
            lowest[key] = min(r.seq, lowest.get(key, r.seq))
        cur.executemany(
            self.sql(
                "INSERT INTO seq_lines (store, gateway, contiguous_to, first_seen) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (store, gateway) DO UPDATE "
                "SET contiguous_to = excluded.contiguous_to "
                "WHERE excluded.contiguous_to < seq_lines.contiguous_to "
                "AND seq_lines.settled = 0"
            ),
            [(s, g, seq - 1, received_at) for (s, g), seq in lowest.items()],
        )


def open_store(url: str) -> Store:
    """``sqlite:///path`` (``sqlite:////abs/path`` or ``sqlite:///rel/path``) or
    ``postgresql://...`` / ``postgres://...``; ``StoreError`` for anything else."""
    if url.startswith("sqlite:///"):
        from central.sqlite_store import SqliteStore  # noqa: PLC0415

        return SqliteStore.open(url.removeprefix("sqlite:///"))
    if url.startswith(("postgresql://", "postgres://")):
        try:
            from central.postgres_store import PostgresStore  # noqa: PLC0415
        except ImportError as exc:
            raise StoreError(
                f"PostgreSQL needs psycopg: pip install 'silentgate[central]' ({exc})"
            ) from exc
        return PostgresStore.open(url)
    raise StoreError(f"unsupported database URL {url[:60]!r}: sqlite:///PATH or postgresql://...")
