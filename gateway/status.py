"""The gateway's health in one place, as published on the retained ``P/status`` topic.

Device sessions, the pipeline and the outbox report here; the uplink publishes ``payload()`` when
something changed (at most once a second) and every ``REFRESH_S`` so backlog figures stay fresh.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Final

from gateway import __version__
from gateway.events import format_ts
from gateway.outbox import Backlog

REFRESH_S: Final = 30.0


class StatusBoard:
    def __init__(self, backlog: Callable[[], Backlog]) -> None:
        self._backlog = backlog
        self.devices: dict[str, str] = {}
        self.details: dict[str, str] = {}
        self.counters: dict[str, int] = {}
        self.changed = True

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
        if state == "online":
            backlog = self._backlog()
            body["outbox"] = {
                "backlog": backlog.count,
                "oldest_age_s": round(backlog.oldest_age_s(now), 3),
                "last_seq": backlog.last_seq,
            }
            if self.counters:
                body["counters"] = dict(self.counters)
        self.changed = False
        return json.dumps(body, separators=(",", ":"))
