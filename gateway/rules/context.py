"""What a template field means for one event: the whitelist of ``templates`` resolved against the
event object and the cached central content."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, tzinfo
from typing import Protocol

from gateway.config.templates import Value
from gateway.events.model import AnyEvent, ItemMoved, PresenceDwell, PresenceExit, ShelfWeight


class ContentLookup(Protocol):
    """``ContentStore`` as the engine sees it (a fake in tests)."""

    def zone(self, zone: str) -> Mapping[str, Value] | None: ...

    def gtin(self, gtin: str) -> Mapping[str, Value] | None: ...

    def offer(self, pseudonym: str) -> Mapping[str, Value] | None: ...


class EventContext:
    def __init__(self, event: AnyEvent, content: ContentLookup, tz: tzinfo | None) -> None:
        self._event = event
        self._content = content
        self._tz = tz

    def resolve(self, path: tuple[str, ...]) -> Value | None:
        head = path[0]
        if head == "content":
            return self._content_value(path[1], path[2])
        if head == "offer":
            subject = self._event.subject
            if subject is None or subject.kind != "customer" or subject.id is None:
                return None
            offer = self._content.offer(subject.id)
            return None if offer is None else offer.get(path[1])
        return self._event_value(head)

    def _content_value(self, kind: str, key: str) -> Value | None:
        event = self._event
        if kind == "zone":
            entry = None if event.zone is None else self._content.zone(event.zone)
        else:
            gtin = event.subject.gtin if event.subject is not None else None
            entry = None if gtin is None else self._content.gtin(gtin)
        return None if entry is None else entry.get(key)

    def _event_value(self, name: str) -> Value | None:
        event, subject = self._event, self._event.subject
        value: Value | None = None
        match name:
            case "zone" | "type" | "store":
                value = getattr(event, name)
            case "kind" | "gtin" | "serial" if subject is not None:
                value = getattr(subject, name)
            case "time":
                value = datetime.fromisoformat(event.ts).astimezone(self._tz).strftime("%H:%M")
            case "dwell_s" if isinstance(event, PresenceDwell | PresenceExit):
                value = event.dwell_s
            case "grams" | "delta_g" if isinstance(event, ShelfWeight):
                value = getattr(event, name)
            case "weight_delta_g" if isinstance(event, ItemMoved):
                value = event.weight_delta_g
        return value  # the templates' whitelist names nothing else
