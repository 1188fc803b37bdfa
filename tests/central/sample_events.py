"""Contract events as a gateway publishes them, for the central tests."""

from __future__ import annotations

import json
from typing import Any

from gateway.events.ids import new_event_id

PREFIX = "silentcommerce/v1"
STORE, GATEWAY = "store-042", "gw-1"


def event(seq: object, **fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema": "silentcommerce.event/v1",
        "id": str(new_event_id()),
        "seq": seq,
        "type": "presence.enter",
        "ts": "2026-11-23T10:00:00.000Z",
        "store": STORE,
        "gateway": GATEWAY,
        "zone": "shelf-a",
        "subject": {"kind": "customer", "id": "ab" * 32},
        "source": {"device": "door"},
    }
    doc.update(fields)
    return doc


def topic_of(doc: dict[str, Any]) -> str:
    return f"{PREFIX}/{doc['store']}/{doc['gateway']}/event/{doc['type'].replace('.', '/')}"


def batch_topic(store: str = STORE, gateway: str = GATEWAY) -> str:
    return f"{PREFIX}/{store}/{gateway}/events"


def payload(doc: object) -> bytes:
    return json.dumps(doc).encode()
