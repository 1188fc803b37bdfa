"""What the live page shows, read from the daemon through a read-only surface.

``DaemonView`` is the page's only way into the daemon (``gateway.telemetry.Observed``, which
names everything it reads) and it only reads: device states from the
status board, reads per antenna from the device contexts' counters, who is in which zone from
the presence stage, the outbox's backlog, delivered events from the uplink's counter. Rates are
differences of those counters between two snapshots. What no counter holds (RSSI per antenna,
which tags an antenna sees now, a tag's reads over time) comes from the reads' ring, filled only
while someone watches (``ring``).

Privacy: the page names a customer by pseudonym only. With ``customer_ids = "hmac-sha256"`` it
is the pseudonym the events carry (so the installer and the CRM see the same one); in ``raw``
or ``omit`` mode, where events carry a card number or nothing, it is an HMAC under a key made
at each start, stable while the daemon runs and meaningless outside it. Items are named by GTIN
and serial (an EPC that is no SGTIN-96, by its EPC).
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import logging
import math
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

from gateway.events.model import ActionExecuted, AnyEvent, DeviceStatus, Subject, format_ts
from gateway.reads.batch import SubjectKind
from gateway.telemetry import Observed
from gateway.web.ring import ReadRing, Window

WINDOW_S: Final = 60.0  # the RSSI histograms' and the tuning view's span
NOW_S: Final = 2.0  # "seen now": read in this many seconds
RSSI_EDGES: Final = tuple(range(-90, -15, 5))  # dBm: 14 bins from -90 to -20, ends clamped
MAX_LISTED: Final = 40  # tags per antenna, subjects per zone, tags in the tuning view
RECENT_EVENTS: Final = 40
RECENT_ERRORS: Final = 20
MAX_MESSAGE: Final = 300  # characters of a log line on the page
RATE_MIN_S: Final = 0.5  # a rate is measured over at least this long


@dataclass(frozen=True, slots=True)
class Antenna:
    key: str  # "device:antenna", what the page selects by
    device: str
    index: int  # the device's index in the config (the reads' device column)
    antenna: int
    zone: str


class ErrorLog(logging.Handler):
    """The daemon's latest warnings and errors, for the page; installed while the page runs."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: collections.deque[dict[str, str]] = collections.deque(maxlen=RECENT_ERRORS)

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self.records.append(
            {
                "ts": format_ts(record.created),
                "level": record.levelname.lower(),
                "source": record.name,
                "message": message[:MAX_MESSAGE],
            }
        )


class DaemonView:
    def __init__(self, daemon: Observed) -> None:
        self._d = daemon
        self.ring = ReadRing(daemon.pipeline)
        self.errors = ErrorLog()
        self._events: collections.deque[AnyEvent] = collections.deque(maxlen=RECENT_EVENTS)
        self._page_key = secrets.token_bytes(32)  # raw/omit mode: pseudonyms for this run only
        self.antennas = [
            Antenna(f"{device.id}:{antenna}", device.id, index, antenna, zone)
            for index, device in enumerate(daemon.config.readers)
            for antenna, zone in sorted(device.zones().items())
        ]
        self._by_key = {a.key: a for a in self.antennas}
        self._counted_at: float | None = None
        self._counts: dict[str, int] = {}
        self._published = 0
        self._rates: dict[str, float] = {}
        self._delivery_rate: float | None = None

    def now(self) -> float:
        """The daemon's clock, the one the reads are stamped with."""
        return self._d.clock.now()

    def on_events(self, events: Sequence[AnyEvent]) -> None:
        """Every stored event passes here (a deque append each: events are few, reads many)."""
        self._events.extend(events)

    def snapshot(self, tuning: str | None = None) -> dict[str, object]:
        """Everything the page shows; ``tuning``: an antenna's key for the tuning view."""
        now = self._d.clock.now()
        self._count(now)
        window = self.ring.since(now - WINDOW_S)
        visits = self._d.stage.visits()
        backlog = self._d.outbox.backlog()
        wall = time.time()
        return {
            "ts": format_ts(wall),
            "store": self._d.config.site.store,
            "gateway": self._d.config.site.gateway,
            "watching": self.ring.armed,
            "devices": self._devices(),
            "rssi_edges": list(RSSI_EDGES),
            "antennas": self._antennas(window, now),
            "zones": self._zones(visits, now),
            "outbox": {
                "backlog": backlog.count,
                "oldest_age_s": round(backlog.oldest_age_s(wall), 1),
                "bytes": backlog.bytes,
                "max_bytes": backlog.max_bytes,
                "storage": backlog.storage.state,
                "connected": self._d.uplink.connected.is_set(),
                "delivered": self._d.uplink.published,
                "delivered_per_s": _round(self._delivery_rate),
            },
            "errors": list(reversed(self.errors.records)),
            "events": [self._event(e) for e in reversed(self._events)],
            "tuning": self._tuning(tuning, window, visits, now),
        }

    def _count(self, now: float) -> None:
        """Reads per antenna and deliveries per second since the last snapshot (at least
        ``RATE_MIN_S`` ago: a second page asking in between sees the same rates)."""
        if self._counted_at is not None and now - self._counted_at < RATE_MIN_S:
            return
        counts: dict[str, int] = {}
        for ctx in self._d.contexts:
            for antenna, n in ctx.reads_by_antenna.items():
                counts[f"{ctx.name}:{antenna}"] = n
        published = self._d.uplink.published
        if self._counted_at is not None:
            dt = now - self._counted_at
            self._rates = {
                a.key: (counts.get(a.key, 0) - self._counts.get(a.key, 0)) / dt
                for a in self.antennas
            }
            self._delivery_rate = (published - self._published) / dt
        self._counted_at, self._counts, self._published = now, counts, published

    def _devices(self) -> list[dict[str, object]]:
        status = self._d.status
        return [
            {"id": device, "state": state, "detail": status.details.get(device)}
            for device, state in status.devices.items()
        ]

    def _antennas(self, window: Window, now: float) -> list[dict[str, object]]:
        edges = np.asarray(RSSI_EDGES, np.float64)
        rssi = np.clip(window.rssi.astype(np.float64), edges[0], edges[-1] - 1e-3)
        recent = window.t >= now - NOW_S
        listed = []
        for a in self.antennas:
            here = (window.device == a.index) & (window.antenna == a.antenna)
            heard = here & ~np.isnan(rssi)
            hist, _ = np.histogram(rssi[heard], bins=edges)
            tags = self._tags_now(window, here & recent)
            listed.append(
                {
                    "key": a.key,
                    "device": a.device,
                    "antenna": a.antenna,
                    "zone": a.zone,
                    "reads": self._counts.get(a.key, 0),
                    "reads_per_s": _round(self._rates.get(a.key)),
                    "rssi_hist": hist.tolist(),
                    "tags_now": tags[:MAX_LISTED],
                    "tags_now_total": len(tags),
                }
            )
        return listed

    def _tags_now(self, window: Window, rows: NDArray[np.bool_]) -> list[dict[str, object]]:
        subjects = window.subject[rows]
        if not len(subjects):
            return []
        rssi = window.rssi[rows]
        ids, inverse, counts = np.unique(subjects, return_inverse=True, return_counts=True)
        best = np.full(len(ids), -np.inf)
        np.fmax.at(best, inverse, rssi.astype(np.float64))
        order = np.argsort(-counts, kind="stable")
        tags = []
        for i in order.tolist():
            label = self.label(int(ids[i]))
            if label is not None:
                strongest = None if math.isinf(best[i]) else round(float(best[i]), 1)
                tags.append({**label, "reads": int(counts[i]), "rssi": strongest})
        return tags

    def _zones(self, visits: dict[int, tuple[int, float]], now: float) -> list[dict[str, object]]:
        present: dict[int, dict[str, list[dict[str, object]]]] = {
            z: {"items": [], "customers": []} for z in range(len(self._d.zone_names))
        }
        for subject, (zone, since) in sorted(visits.items(), key=lambda v: v[1][1]):
            label = self.label(subject)
            if label is None:
                continue
            group = "customers" if label["kind"] == "customer" else "items"
            present[zone][group].append({**label, "dwell_s": round(max(0.0, now - since), 1)})
        return [
            {
                "id": name,
                "customers": present[z]["customers"][:MAX_LISTED],
                "items": present[z]["items"][:MAX_LISTED],
                "customers_total": len(present[z]["customers"]),
                "items_total": len(present[z]["items"]),
            }
            for z, name in enumerate(self._d.zone_names)
        ]

    def _tuning(
        self, key: str | None, window: Window, visits: dict[int, tuple[int, float]], now: float
    ) -> dict[str, object] | None:
        """Per tag heard on one antenna: reads and mean RSSI per second of the last minute, and
        its home zone (where presence puts it): a tag at home elsewhere is bleed."""
        antenna = self._by_key.get(key) if key else None
        if antenna is None:
            return None
        rows = (window.device == antenna.index) & (window.antenna == antenna.antenna)
        subjects, t, rssi = window.subject[rows], window.t[rows], window.rssi[rows]
        seconds = int(WINDOW_S)
        bucket = np.clip((t - (now - WINDOW_S)).astype(np.int64), 0, seconds - 1)
        ids, inverse, counts = np.unique(subjects, return_inverse=True, return_counts=True)
        cells = inverse.astype(np.int64) * seconds + bucket
        size = len(ids) * seconds
        reads = np.bincount(cells, minlength=size).reshape(-1, seconds)
        heard = ~np.isnan(rssi)
        sums = np.bincount(cells[heard], weights=rssi[heard], minlength=size).reshape(-1, seconds)
        with_rssi = np.bincount(cells[heard], minlength=size).reshape(-1, seconds)
        zone_names = self._d.zone_names
        tags = []
        for i in np.argsort(-counts, kind="stable")[:MAX_LISTED].tolist():
            label = self.label(int(ids[i]))
            if label is None:
                continue
            home = visits.get(int(ids[i]))
            home_zone = zone_names[home[0]] if home is not None else None
            mean = [
                round(float(s / n), 1) if n else None
                for s, n in zip(sums[i].tolist(), with_rssi[i].tolist(), strict=True)
            ]
            tags.append(
                {
                    **label,
                    "reads": int(counts[i]),
                    "home_zone": home_zone,
                    "bleed": home_zone is not None and home_zone != antenna.zone,
                    "reads_per_s": reads[i].tolist(),
                    "rssi": mean,
                }
            )
        return {"antenna": antenna.key, "zone": antenna.zone, "seconds": seconds, "tags": tags}

    def label(self, subject: int) -> dict[str, object] | None:
        """How the page names a subject; None for an id released since it was read."""
        subjects = self._d.subjects
        if subject >= len(subjects.raw_ids) or not subjects.raw_ids[subject]:
            return None
        if subjects.kinds[subject] == SubjectKind.CUSTOMER:
            return {"kind": "customer", "id": self._pseudonym(subject)}
        return _item(self._d.factory.subject(subject))

    def _pseudonym(self, subject: int) -> str:
        if self._d.pseudonymizer.mode == "hmac-sha256":
            return self._d.factory.subject(subject).id or ""
        return self._page_hmac(self._d.subjects.raw_ids[subject])

    def _page_hmac(self, raw: str) -> str:
        return hmac.new(self._page_key, raw.encode(), hashlib.sha256).hexdigest()

    def _event(self, event: AnyEvent) -> dict[str, object]:
        shown: dict[str, object] = {"ts": event.ts, "type": event.type, "zone": event.zone}
        if event.subject is not None:
            shown["subject"] = self._event_subject(event.subject)
        if isinstance(event, ActionExecuted):
            shown["action"] = {
                "rule": event.rule, "output": event.output, "do": event.action,
                "ok": event.ok, "error": event.error,
            }  # fmt: skip
        elif isinstance(event, DeviceStatus):
            shown["device"] = {"id": event.device, "state": event.state, "detail": event.detail}
        return shown

    def _event_subject(self, subject: Subject) -> dict[str, object]:
        if subject.kind == "item":
            return _item(subject)
        if subject.id is None:  # omit mode
            return {"kind": "customer", "id": None}
        if self._d.pseudonymizer.mode == "hmac-sha256":
            return {"kind": "customer", "id": subject.id}
        return {"kind": "customer", "id": self._page_hmac(subject.id)}  # raw mode: a card number


def _item(subject: Subject) -> dict[str, object]:
    if subject.gtin is not None:
        return {"kind": "item", "gtin": subject.gtin, "serial": subject.serial}
    return {"kind": "item", "epc": subject.id}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
