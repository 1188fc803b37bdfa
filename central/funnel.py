"""The customer funnel of a store, per zone and hour, from the stored events.

A visit is a customer's stay in a zone: from the ``presence.enter`` to the ``presence.exit``
(an exit without its enter starts at its ``since``; an enter without its exit, at the end of
the day, lasts until its last event). A visit counts in the hour it began, and its stages are:

* **passed**: the customer entered the zone;
* **dwelled**: a ``presence.dwell`` came during the visit (the zone's ``dwell_s`` passed);
* **offered**: of those who dwelled, an ``action.executed`` (``ok``) for this customer in this
  zone during the visit, or up to ``SLACK_S`` after it (the rule fires on the dwell);
* **picked up**: of those who dwelled, an ``item.pickup`` naming this customer
  (``customer.id``, docs/shelves.md) in this zone during the visit (``SLACK_S`` either side:
  a pickup's time is the weight change's first movement);
* **picked up after an offer**: both of the last two.

Each stage counts distinct customers in a (store, zone, hour), so a customer who came back
within the hour counts once, at the furthest stage any of their visits reached; ``visits``
counts them all. Conversions are the ratios between stages (``None`` where the stage before is
empty). Dwell times (exit ``dwell_s``, or end minus start) go into ``DWELL_BUCKETS_S``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from central.store import StoredEvent

SLACK_S: Final = 2.0
DWELL_BUCKETS_S: Final = (5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)  # upper edges; then more


@dataclass(slots=True)
class Visit:
    store: str
    zone: str
    customer: str
    start: float
    end: float
    dwelled: bool = False
    offered: bool = False
    picked: bool = False

    def covers(self, t: float, slack: float = 0.0) -> bool:
        return self.start - slack <= t <= self.end + slack


@dataclass(slots=True)
class FunnelRow:
    store: str
    zone: str
    hour: datetime  # UTC, the hour the visits began
    visits: int = 0
    passed: int = 0
    dwelled: int = 0
    offered: int = 0
    picked_up: int = 0
    picked_up_offered: int = 0

    @property
    def conversions(self) -> dict[str, float | None]:
        return {
            "dwell_rate": _ratio(self.dwelled, self.passed),
            "offer_rate": _ratio(self.offered, self.dwelled),
            "pickup_rate": _ratio(self.picked_up, self.dwelled),
            "offer_pickup_rate": _ratio(self.picked_up_offered, self.offered),
        }


@dataclass(slots=True)
class Funnel:
    rows: list[FunnelRow]
    dwell_histograms: dict[tuple[str, str], list[int]] = field(default_factory=dict)

    def totals(self) -> dict[tuple[str, str], FunnelRow]:
        """The day per (store, zone): stage counts summed over the hours."""
        out: dict[tuple[str, str], FunnelRow] = {}
        for row in self.rows:
            total = out.setdefault((row.store, row.zone), FunnelRow(row.store, row.zone, row.hour))
            total.hour = min(total.hour, row.hour)
            for name in (
                "visits",
                "passed",
                "dwelled",
                "offered",
                "picked_up",
                "picked_up_offered",
            ):
                setattr(total, name, getattr(total, name) + getattr(row, name))
        return out


def visits_from(events: Iterable[StoredEvent]) -> list[Visit]:
    """Customers' visits with their stages, from events in (store, gateway, seq) order."""
    visits: list[Visit] = []
    open_: dict[tuple[str, str, str], Visit] = {}
    marks: list[_Mark] = []
    for e in events:
        if e.subject_kind == "customer" and e.subject_id is not None and e.zone is not None:
            key = (e.store, e.zone, e.subject_id)
            if e.type == "presence.enter":
                open_[key] = Visit(e.store, e.zone, e.subject_id, e.ts, e.ts)
                visits.append(open_[key])
            elif e.type == "presence.exit":
                visit = open_.pop(key, None)
                if visit is None:
                    since = _since(e.payload, e.ts)
                    visit = Visit(e.store, e.zone, e.subject_id, since, e.ts)
                    visits.append(visit)
                visit.end = e.ts
            elif e.type == "presence.dwell":
                marks.append(_Mark("dwell", e.store, e.zone, e.subject_id, e.ts))
            elif e.type == "action.executed" and json.loads(e.payload).get("ok") is True:
                marks.append(_Mark("offer", e.store, e.zone, e.subject_id, e.ts))
            if key in open_:
                open_[key].end = max(open_[key].end, e.ts)
        elif e.type == "item.pickup" and e.zone is not None:
            who = _customer_of(e.payload)
            if who is not None:
                marks.append(_Mark("pickup", e.store, e.zone, who, e.ts))
    _mark(visits, marks)
    return visits


def funnel(visits: Sequence[Visit]) -> Funnel:
    stages: dict[tuple[str, str, datetime], dict[str, set[str]]] = defaultdict(
        lambda: defaultdict(set)
    )
    counts: dict[tuple[str, str, datetime], int] = defaultdict(int)
    histograms: dict[tuple[str, str], list[int]] = {}
    for v in visits:
        key = (v.store, v.zone, _hour(v.start))
        counts[key] += 1
        got = stages[key]
        got["passed"].add(v.customer)
        if v.dwelled:
            got["dwelled"].add(v.customer)
            if v.offered:
                got["offered"].add(v.customer)
            if v.picked:
                got["picked_up"].add(v.customer)
            if v.offered and v.picked:
                got["picked_up_offered"].add(v.customer)
        bins = histograms.setdefault((v.store, v.zone), [0] * (len(DWELL_BUCKETS_S) + 1))
        bins[_bucket(v.end - v.start)] += 1
    rows = [
        FunnelRow(store, zone, hour, counts[(store, zone, hour)],
                  *(len(got[s]) for s in ("passed", "dwelled", "offered", "picked_up",
                                          "picked_up_offered")))
        for (store, zone, hour), got in sorted(stages.items())
    ]  # fmt: skip
    return Funnel(rows, histograms)


@dataclass(frozen=True, slots=True)
class _Mark:
    kind: str  # dwell | offer | pickup
    store: str
    zone: str
    customer: str
    ts: float


def _mark(visits: list[Visit], marks: list[_Mark]) -> None:
    by_key: dict[tuple[str, str, str], list[Visit]] = defaultdict(list)
    for v in visits:
        by_key[v.store, v.zone, v.customer].append(v)
    for m in marks:
        for v in by_key.get((m.store, m.zone, m.customer), ()):
            if m.kind == "dwell" and v.covers(m.ts):
                v.dwelled = True
            elif m.kind == "offer" and v.start <= m.ts <= v.end + SLACK_S:
                v.offered = True
            elif m.kind == "pickup" and v.covers(m.ts, SLACK_S):
                v.picked = True


def _customer_of(payload: str) -> str | None:
    customer = json.loads(payload).get("customer")
    who = customer.get("id") if isinstance(customer, dict) else None
    return who if isinstance(who, str) else None


def _since(payload: str, default: float) -> float:
    since = json.loads(payload).get("since")
    try:
        return datetime.fromisoformat(since).timestamp() if isinstance(since, str) else default
    except ValueError:
        return default


def _hour(t: float) -> datetime:
    return datetime.fromtimestamp(t - t % 3600, UTC)


def _bucket(seconds: float) -> int:
    return next(
        (i for i, edge in enumerate(DWELL_BUCKETS_S) if seconds < edge), len(DWELL_BUCKETS_S)
    )


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None
