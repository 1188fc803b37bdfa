"""The backend for real deployments: PostgreSQL through psycopg 3 (the ``central`` extra).

A batch is one statement: the rows go as one array per column and ``unnest`` turns them back
into rows server-side, so a thousand events cost one round trip and one parse (executemany
would send a thousand). The arrays go in binary (``%b``): psycopg's text format escapes every
element with a regular expression, which cost more than the rest of the insert together.
Rows are sorted by (store, gateway, seq) first: members of a group that insert overlapping
repeats at once then take the unique index's locks in one order and cannot deadlock each other.
The schema is created under an advisory lock (several members start at once, and concurrent
``CREATE TABLE IF NOT EXISTS`` can collide on the catalog).
"""

from __future__ import annotations

import contextlib
import operator
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Final

import psycopg

from central.records import EventRow
from central.store import Store, StoreError

SCHEMA_LOCK: Final = 0x5C3A_0001  # advisory lock keys of this application
WATCH_LOCK: Final = 0x5C3A_0002
SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS events (
    id text PRIMARY KEY,
    store text NOT NULL,
    gateway text NOT NULL,
    seq bigint NOT NULL,
    type text NOT NULL,
    ts timestamptz NOT NULL,
    zone text,
    subject_kind text,
    subject_id text,
    payload jsonb NOT NULL,
    received_at double precision NOT NULL,
    UNIQUE (store, gateway, seq)
);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts);
CREATE TABLE IF NOT EXISTS seq_conflicts (
    id text PRIMARY KEY,
    store text NOT NULL,
    gateway text NOT NULL,
    seq bigint NOT NULL,
    held_by text,
    payload jsonb NOT NULL,
    seen_at double precision NOT NULL
);
CREATE TABLE IF NOT EXISTS seq_lines (
    store text NOT NULL,
    gateway text NOT NULL,
    contiguous_to bigint NOT NULL,
    first_seen double precision NOT NULL,
    settled integer NOT NULL DEFAULT 0,
    PRIMARY KEY (store, gateway)
);
CREATE TABLE IF NOT EXISTS seq_gaps (
    store text NOT NULL,
    gateway text NOT NULL,
    first_seq bigint NOT NULL,
    last_seq bigint NOT NULL,
    noticed_at double precision NOT NULL,
    reported_at double precision,
    closed_at double precision
);
CREATE INDEX IF NOT EXISTS seq_gaps_open ON seq_gaps (store, gateway) WHERE closed_at IS NULL;
CREATE TABLE IF NOT EXISTS gateway_status (
    store text NOT NULL,
    gateway text NOT NULL,
    state text NOT NULL,
    ts timestamptz NOT NULL,
    received_at double precision NOT NULL,
    PRIMARY KEY (store, gateway, ts, state)
);
"""
INSERT: Final = """
INSERT INTO events (id, store, gateway, seq, type, ts, zone, subject_kind, subject_id, payload,
                    received_at)
SELECT u.id, u.store, u.gateway, u.seq, u.type, u.ts, u.zone, u.subject_kind, u.subject_id,
       u.payload::jsonb, %s
FROM unnest(%b::text[], %b::text[], %b::text[], %b::bigint[], %b::text[], %b::timestamptz[],
            %b::text[], %b::text[], %b::text[], %b::text[])
     AS u (id, store, gateway, seq, type, ts, zone, subject_kind, subject_id, payload)
ON CONFLICT DO NOTHING
"""

_STORE_GATEWAY_SEQ: Final = operator.itemgetter(1, 2, 3)  # of an EventRow


class PostgresStore(Store):
    payload_text = "payload::text"

    def __init__(self, conn: Any, url: str) -> None:
        super().__init__(conn)
        self._url = url

    @classmethod
    def open(cls, url: str) -> PostgresStore:
        return cls(_connect(url), url)

    def sql(self, text: str) -> str:
        return text

    def _insert_events(self, cur: Any, rows: Sequence[EventRow], received_at: float) -> int:
        if not rows:
            return 0
        # EventRow's fields in the order of INSERT's arrays, one list per column.
        columns = map(list, zip(*sorted(rows, key=_STORE_GATEWAY_SEQ), strict=True))
        cur.execute(INSERT, [received_at, *columns])
        return int(cur.rowcount)

    def _ts_param(self, ts: datetime) -> object:
        return ts

    def _ts_value(self, value: object) -> float:
        assert isinstance(value, datetime)
        return value.timestamp()

    def is_data_error(self, exc: Exception) -> bool:
        # UnicodeError: text the driver cannot encode (a lone surrogate from a JSON escape).
        return isinstance(exc, psycopg.DataError | psycopg.IntegrityError | UnicodeError)

    def is_unreachable(self, exc: Exception) -> bool:
        # A lost connection, a server restarting, a deadlock or serialisation failure.
        return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)

    def reconnect(self) -> None:
        if not self._conn.closed and not self._conn.broken:
            return  # the transaction was rolled back; the connection is fine
        with contextlib.suppress(StoreError):  # the next attempt fails and comes back here
            self._conn = _connect(self._url)

    @contextmanager
    def exclusive(self) -> Iterator[Any]:
        with self.transaction() as cur:
            cur.execute("SELECT pg_try_advisory_xact_lock(%s)", (WATCH_LOCK,))
            yield cur if cur.fetchone()[0] else None


def _connect(url: str) -> Any:
    try:
        conn = psycopg.connect(url, connect_timeout=10)
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            cur.execute(SCHEMA)
        conn.commit()
    except psycopg.Error as exc:
        raise StoreError(f"cannot open the PostgreSQL database: {exc}") from exc
    return conn
