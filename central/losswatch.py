"""Loss detection across the members of a group: ``seq`` gaps, per gateway, in the database.

No member sees every ``seq`` of a gateway, so the check runs where the shares meet. Each
gateway has a line in ``seq_lines``: ``contiguous_to``, the highest ``seq`` below which every
event is stored. A check reads the gateway's ``seq``s above it (at most ``MAX_SCAN``), moves it
up to the first hole, and compares the holes (ranges of missing ``seq`` below the highest
stored) with the open rows of ``seq_gaps``:

* a hole not yet recorded is a gap, ``noticed_at`` now (or when the gap it was part of was
  noticed: a gap partly filled keeps its age);
* a gap open for ``grace_s`` is reported: ``reported_at`` and a WARNING line. Younger gaps are
  normal (a backlog after an outage arrives in order but takes a while; a repeat after a
  reconnect can overtake); older ones are loss, or a member that is down with its share;
* a recorded gap whose ``seq``s have all arrived is closed (``closed_at``; an INFO line if it
  had been reported).

Where a line starts: below the lowest ``seq`` stored in the gateway's first ``grace_s`` (the
insert keeps lowering it until then), so a consumer that joins a running gateway does not
report its whole history as lost. Events lost after the last one stored cannot be seen until a
later one arrives. One member checks at a time (``Store.exclusive``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Final

from central.store import Store

log = logging.getLogger("central.losswatch")

MAX_SCAN: Final = 200_000  # seqs read per gateway and check


@dataclass(frozen=True, slots=True)
class Gap:
    store: str
    gateway: str
    first_seq: int
    last_seq: int
    noticed_at: float
    reported_at: float | None = None

    @property
    def count(self) -> int:
        return self.last_seq - self.first_seq + 1


class LossWatch:
    def __init__(self, store: Store, grace_s: float) -> None:
        self._store = store
        self._grace_s = grace_s

    def open_gaps(self) -> int:
        """Gaps reported (past the grace period) and not yet closed."""
        found = self._store.query(
            "SELECT count(*) FROM seq_gaps WHERE closed_at IS NULL AND reported_at IS NOT NULL"
        )
        return int(found[0][0])

    def check(self, now: float) -> list[Gap]:
        """One look at every gateway; the gaps reported by this look."""
        reported: list[Gap] = []
        with self._store.exclusive() as cur:
            if cur is None:
                return reported  # another member is looking
            cur.execute("SELECT store, gateway, contiguous_to, first_seen, settled FROM seq_lines")
            for store, gateway, contiguous_to, first_seen, settled in cur.fetchall():
                if not settled:
                    if now - first_seen < self._grace_s:
                        continue  # its start may still move down
                    self._execute(
                        cur,
                        "UPDATE seq_lines SET settled = 1 WHERE store = %s AND gateway = %s",
                        store, gateway,
                    )  # fmt: skip
                reported += self._check_line(cur, store, gateway, int(contiguous_to), now)
        return reported

    def _check_line(self, cur: Any, store: str, gateway: str, after: int, now: float) -> list[Gap]:
        self._execute(
            cur,
            "SELECT seq FROM events WHERE store = %s AND gateway = %s AND seq > %s "
            "ORDER BY seq LIMIT %s",
            store, gateway, after, MAX_SCAN,
        )  # fmt: skip
        holes, contiguous = _holes([int(r[0]) for r in cur.fetchall()], after)
        self._execute(
            cur,
            "SELECT first_seq, last_seq, noticed_at, reported_at FROM seq_gaps "
            "WHERE store = %s AND gateway = %s AND closed_at IS NULL",
            store, gateway,
        )  # fmt: skip
        known = [Gap(store, gateway, int(a), int(b), n, r) for a, b, n, r in cur.fetchall()]
        current = [self._age(store, gateway, first, last, known, now) for first, last in holes]
        self._close(cur, known, current, now)
        self._open(cur, known, current)
        reported = self._report(cur, current, now)
        if contiguous > after:
            self._execute(
                cur,
                "UPDATE seq_lines SET contiguous_to = %s WHERE store = %s AND gateway = %s",
                contiguous, store, gateway,
            )  # fmt: skip
        return reported

    def _age(
        self, store: str, gateway: str, first: int, last: int, known: list[Gap], now: float
    ) -> Gap:
        parents = [g for g in known if g.first_seq <= last and first <= g.last_seq]
        noticed = min((g.noticed_at for g in parents), default=now)
        reported = min((g.reported_at for g in parents if g.reported_at is not None), default=None)
        return Gap(store, gateway, first, last, noticed, reported)

    def _close(self, cur: Any, known: list[Gap], current: list[Gap], now: float) -> None:
        spans = {(g.first_seq, g.last_seq) for g in current}
        for gap in known:
            if (gap.first_seq, gap.last_seq) in spans:
                continue
            self._execute(
                cur,
                "UPDATE seq_gaps SET closed_at = %s WHERE store = %s AND gateway = %s "
                "AND first_seq = %s AND last_seq = %s AND closed_at IS NULL",
                now, gap.store, gap.gateway, gap.first_seq, gap.last_seq,
            )  # fmt: skip
            if gap.reported_at is not None and not any(_overlap(g, gap) for g in current):
                log.info(
                    "seq gap closed: %s/%s seq %d-%d arrived %.0f s after it was noticed",
                    gap.store, gap.gateway, gap.first_seq, gap.last_seq, now - gap.noticed_at,
                )  # fmt: skip

    def _open(self, cur: Any, known: list[Gap], current: list[Gap]) -> None:
        spans = {(g.first_seq, g.last_seq) for g in known}
        for gap in current:
            if (gap.first_seq, gap.last_seq) not in spans:
                self._execute(
                    cur,
                    "INSERT INTO seq_gaps (store, gateway, first_seq, last_seq, noticed_at, "
                    "reported_at) VALUES (%s, %s, %s, %s, %s, %s)",
                    gap.store, gap.gateway, gap.first_seq, gap.last_seq, gap.noticed_at,
                    gap.reported_at,
                )  # fmt: skip

    def _report(self, cur: Any, current: list[Gap], now: float) -> list[Gap]:
        due = [g for g in current if g.reported_at is None and now - g.noticed_at >= self._grace_s]
        for gap in due:
            self._execute(
                cur,
                "UPDATE seq_gaps SET reported_at = %s WHERE store = %s AND gateway = %s "
                "AND first_seq = %s AND last_seq = %s AND closed_at IS NULL",
                now, gap.store, gap.gateway, gap.first_seq, gap.last_seq,
            )  # fmt: skip
            log.warning(
                "seq gap: %s/%s seq %d-%d (%d events) missing for %.0f s",
                gap.store, gap.gateway, gap.first_seq, gap.last_seq, gap.count,
                now - gap.noticed_at,
            )  # fmt: skip
        return due

    def _execute(self, cur: Any, sql: str, *params: object) -> None:
        cur.execute(self._store.sql(sql), params)


def _holes(seqs: list[int], after: int) -> tuple[list[tuple[int, int]], int]:
    """Missing ranges among sorted ``seqs`` (all above ``after``), and how far the line is
    contiguous from ``after``."""
    holes = []
    expected = after + 1
    for seq in seqs:
        if seq > expected:
            holes.append((expected, seq - 1))
        expected = seq + 1
    contiguous = holes[0][0] - 1 if holes else expected - 1
    return holes, contiguous


def _overlap(a: Gap, b: Gap) -> bool:
    return a.first_seq <= b.last_seq and b.first_seq <= a.last_seq
