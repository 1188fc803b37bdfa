"""The command ledger: every command_id the gateway has accepted for execution or refused as
late, kept durably in the outbox database so that a replay (a central server retrying, a broker
redelivering after a reconnect, an attacker re-sending a captured message) is never executed twice.

A command_id is claimed in its own committed transaction *before* the output is touched: if the
gateway dies mid-command, the replay after restart is refused rather than actuating twice. That
makes actuation at most once, which is the safe side for relays and displays. Entries are kept
``KEEP_S`` (and at most ``MAX_ROWS``); the router refuses ``expires_at`` further ahead than that,
so an expiring command can never outlive its replay protection.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Final

log = logging.getLogger(__name__)

KEEP_S: Final = 7 * 86400.0
MAX_ROWS: Final = 100_000
PRUNE_EVERY: Final = 1000  # claims between prunes
RUNNING: Final = "running"
OK: Final = "ok"


class CommandLedger:
    def __init__(self, conn: sqlite3.Connection, *, keep_s: float = KEEP_S) -> None:
        self._conn = conn
        self.keep_s = keep_s
        self._claims = 0

    def claim(self, command_id: str, output_id: str, now: float) -> str | None:
        """Record ``command_id`` as running; returns None, or the outcome of its earlier use."""
        self._claims += 1
        if self._claims % PRUNE_EVERY == 1:
            self.prune(now)
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            row = self._conn.execute(
                "SELECT outcome FROM commands WHERE command_id = ?", (command_id,)
            ).fetchone()
            if row is None:
                self._conn.execute(
                    "INSERT INTO commands VALUES (?, ?, ?, ?)",
                    (command_id, output_id, RUNNING, now),
                )
        finally:
            self._conn.execute("COMMIT")
        return None if row is None else str(row[0])

    def settle(self, command_id: str, outcome: str) -> None:
        self._conn.execute(
            "UPDATE commands SET outcome = ? WHERE command_id = ?", (outcome, command_id)
        )

    def prune(self, now: float) -> None:
        self._conn.execute("DELETE FROM commands WHERE seen < ?", (now - self.keep_s,))
        self._conn.execute(
            "DELETE FROM commands WHERE command_id IN "
            "(SELECT command_id FROM commands ORDER BY seen DESC LIMIT -1 OFFSET ?)",
            (MAX_ROWS,),
        )

    def __len__(self) -> int:
        return int(self._conn.execute("SELECT count(*) FROM commands").fetchone()[0])
