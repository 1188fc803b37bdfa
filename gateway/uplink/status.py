"""The gateway's health in one place, as published on the retained ``P/status`` topic.

Device sessions, the pipeline and the outbox report here; the uplink publishes ``payload()`` when
something changed (a device's state, or the storage state: at most once a second) and every
``REFRESH_S`` so backlog figures stay fresh. Storage that is full or failed, or a damaged outbox
moved aside at start, is reported twice: as figures (``outbox``, ``storage``) and as a sentence
under ``alerts``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from gateway import __version__
from gateway.events.model import format_ts
from gateway.outbox import Backlog, StorageHealth

if TYPE_CHECKING:
    from gateway.commands.router import CommandRouter

REFRESH_S: Final = 30.0


class StatusBoard:
    def __init__(
        self,
        backlog: Callable[[], Backlog],
        storage: Callable[[], StorageHealth] | None = None,
        *,
        telemetry: Callable[[], dict[str, object]] | None = None,
    ) -> None:
        self._backlog = backlog
        self._storage = storage  # cheap, unlike backlog(): asked every second
        self._published_storage: str | None = None
        self.devices: dict[str, str] = {}
        self.details: dict[str, str] = {}
        self.counters: dict[str, int] = {}
        # The daemon's own figures (reads, events, latencies):
        # gateway/service/metrics.py snapshot().
        self.telemetry = telemetry
        self.kernels: str | None = None  # how the kernels run: compiled, jit or python
        # Inbound MQTT figures (the uplink's): messages refused, shed or failed by kind and
        # reason under "inbound_rejected", the content cache's size under "content".
        self.inbound: Callable[[], dict[str, object]] | None = None
        self._alerts: dict[str, str] = {}  # by the part that raised it (the live page's port)
        self._changed = True

    @property
    def changed(self) -> bool:
        if self._changed:
            return True
        return self._storage is not None and self._storage().state != self._published_storage

    @changed.setter
    def changed(self, value: bool) -> None:
        self._changed = value

    def set_device(self, device: str, state: str, detail: str | None = None) -> None:
        if self.devices.get(device) != state:
            self.changed = True
        self.devices[device] = state
        if detail:
            self.details[device] = detail
        else:
            self.details.pop(device, None)

    def payload(self, state: str = "online") -> str:
        now = time.time()
        body: dict[str, object] = {
            "state": state,
            "version": __version__,
            "ts": format_ts(now),
            "devices": dict(self.devices),
        }
        if self.details:
            body["details"] = dict(self.details)
        if self.kernels:
            body["kernels"] = self.kernels
        if state == "online":
            backlog = self._backlog()
            body["outbox"] = outbox_figures(backlog, now)
            body["storage"] = storage_figures(backlog.storage)
            self._published_storage = backlog.storage.state
            alerts = [*outbox_alerts(backlog), *self._alerts.values()]
            if alerts:
                body["alerts"] = alerts
            counters: dict[str, object] = dict(self.counters)
            if self.telemetry is not None:
                counters.update(self.telemetry())
            if self.inbound is not None:
                counters.update(self.inbound())
            if counters:
                body["counters"] = counters
        self.changed = False
        return json.dumps(body, separators=(",", ":"))

    def set_alert(self, source: str, text: str | None) -> None:
        """A sentence under ``alerts`` for ``source`` until it is set to None."""
        if self._alerts.get(source) == text:
            return
        if text is None:
            del self._alerts[source]
        else:
            self._alerts[source] = text
        self.changed = True

    def touch(self) -> None:
        """Publish soon (within a second): a figure changed that a dashboard should see."""
        self.changed = True

    def count(self, name: str, by: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + by

    def count_commands(self, router: CommandRouter) -> None:
        self.counters["commands_executed"] = router.executed
        self.counters["commands_failed"] = router.failed
        self.counters["commands_refused"] = router.refused


def outbox_figures(backlog: Backlog, now: float) -> dict[str, object]:
    figures: dict[str, object] = {
        "backlog": backlog.count,
        "oldest_age_s": round(backlog.oldest_age_s(now), 3),
        "last_seq": backlog.last_seq,
        "bytes": backlog.bytes,
        "max_bytes": backlog.max_bytes,
        "full": backlog.full,
    }
    if backlog.held:
        figures["held"] = backlog.held
    if backlog.dropped:
        figures["dropped"] = dict(backlog.dropped)
    if backlog.lost:
        figures["lost"] = backlog.lost
    return figures


def storage_figures(health: StorageHealth) -> dict[str, object]:
    figures: dict[str, object] = {"state": health.state, "reserve": health.reserve}
    if health.reason is not None:
        figures["reason"] = health.reason
    if health.since is not None:
        figures["since"] = format_ts(health.since)
    if health.moved_aside is not None:
        figures["moved_aside"] = str(health.moved_aside)
        figures["stranded"] = "unknown" if health.stranded is None else health.stranded
    return figures


def outbox_alerts(backlog: Backlog) -> list[str]:
    """Plain sentences for a dashboard: storage in trouble must be seen, not only logged."""
    alerts = []
    storage = backlog.storage
    waiting = f"; {backlog.held} events waiting in memory" if backlog.held else ""
    if storage.state == "failed":
        alerts.append(f"storage failed: {storage.reason}{waiting}")
    elif backlog.full or storage.state == "full":
        dropping = "; droppable events being dropped" if backlog.full else ""
        alerts.append(f"outbox full: {storage.reason}{waiting}{dropping}")
    if storage.moved_aside is not None:
        stranded = "an unknown number of" if storage.stranded is None else storage.stranded
        alerts.append(
            f"outbox damaged at start: moved to {storage.moved_aside} "
            f"with {stranded} undelivered events in it"
        )
    if backlog.lost:
        alerts.append(f"outbox overflow: {backlog.lost} events lost")
    return alerts
