"""The command ledger: every command_id the gateway has accepted for execution, kept durably in
the outbox database so that a replay (a central server retrying, a broker redelivering after a
reconnect, an attacker re-sending a captured message) is never executed twice.

A command_id is claimed in its own committed transaction *before* the output is touched: if the
gateway dies mid-command, the replay after restart is refused rather than actuating twice. That
makes actuation at most once, which is the safe side for relays and displays. So is a command
the ledger cannot record (storage full or failed): the claim raises ``StorageUnavailable`` and
the router refuses it. A replay is still recognised then, since that needs only a read.

Claims and outcomes are written on the outbox's writer thread, through its connection: they stay
off the event loop and inside ``storage.max_bytes``. A command refused before its claim (late,
malformed) is not recorded: a resend is refused the same way again.

Entries are kept ``KEEP_S`` of *ledger time* (and at most ``MAX_ROWS``): seconds the gateway has
been running, counted on the monotonic clock and resumed after a restart from the latest entry
(downtime does not count). The wall clock steps, on a Pi without a real-time clock by decades
when NTP first answers, and pruning by it would forget in one step every entry made while it
said 1970. Wall time is stored beside, for people to read. The router refuses ``expires_at``
further ahead than ``KEEP_S``, so an expiring command can never outlive its replay protection.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
import time
from collections.abc import Callable
from typing import Final

from gateway.errors import StorageUnavailable
from gateway.outbox import Outbox

log = logging.getLogger(__name__)

KEEP_S: Final = 7 * 86400.0
MAX_ROWS: Final = 100_000
PRUNE_EVERY: Final = 1000  # claims between prunes
RUNNING: Final = "running"
OK: Final = "ok"


class CommandLedger:
    def __init__(
        self,
        outbox: Outbox,
        *,
        keep_s: float = KEEP_S,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._outbox = outbox
        self.keep_s = keep_s
        self._monotonic = monotonic
        self._wall = wall
        self._origin: tuple[float, float] | None = None  # (ledger time, monotonic) at first use
        self._claims = 0

    async def claim(self, command_id: str, output_id: str) -> str | None:
        """Record ``command_id`` as running; returns None, or the outcome of its earlier use.
        Raises StorageUnavailable when a new claim cannot be recorded."""
        return await self._outbox.transact(functools.partial(self._claim, command_id, output_id))

    async def settle(self, command_id: str, outcome: str) -> None:
        """Record the outcome; if storage cannot, the entry stays ``running`` (still a replay)."""
        try:
            await self._outbox.transact(functools.partial(_settle, command_id, outcome))
        except StorageUnavailable as exc:
            log.warning("cannot record the outcome of command %s: %s", command_id, exc)

    async def prune(self) -> None:
        await self._outbox.transact(self._prune)

    async def count(self) -> int:
        return await self._outbox.transact(_count)

    # -- on the writer thread

    def _claim(self, command_id: str, output_id: str, conn: sqlite3.Connection) -> str | None:
        row = conn.execute(
            "SELECT outcome FROM commands WHERE command_id = ?", (command_id,)
        ).fetchone()
        if row is not None:
            return str(row[0])
        health = self._outbox.health()
        if health.state != "ok":
            raise StorageUnavailable(f"storage {health.state}: {health.reason}")
        self._claims += 1
        if self._claims % PRUNE_EVERY == 1:
            self._prune(conn)
        conn.execute(
            "INSERT INTO commands (command_id, output_id, outcome, seen, t) VALUES (?, ?, ?, ?, ?)",
            (command_id, output_id, RUNNING, self._wall(), self._now(conn)),
        )
        return None

    def _prune(self, conn: sqlite3.Connection) -> None:
        conn.execute("DELETE FROM commands WHERE t < ?", (self._now(conn) - self.keep_s,))
        conn.execute(
            "DELETE FROM commands WHERE command_id IN "
            "(SELECT command_id FROM commands ORDER BY t DESC LIMIT -1 OFFSET ?)",
            (MAX_ROWS,),
        )

    def _now(self, conn: sqlite3.Connection) -> float:
        """Ledger time: resumes from the latest entry, then advances with the monotonic clock."""
        if self._origin is None:
            latest = conn.execute("SELECT coalesce(max(t), 0) FROM commands").fetchone()[0]
            self._origin = (float(latest), self._monotonic())
        resumed, started = self._origin
        return resumed + max(0.0, self._monotonic() - started)


def _settle(command_id: str, outcome: str, conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE commands SET outcome = ? WHERE command_id = ?", (outcome, command_id))


def _count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM commands").fetchone()[0])
