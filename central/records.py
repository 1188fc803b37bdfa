"""What a message from the broker holds, checked before anything is stored.

Everything here is hostile until proven otherwise: a payload is bounded in size and depth
before it is parsed (``gateway.wire.bounded_json``), every field the tables index is type- and
length-checked, and an event must name the store and gateway of the topic it came on (a
gateway can only publish under its own prefix, so an event claiming another's is refused
rather than allowed to fill another gateway's ``seq`` line). A message that fails is one
``Rejected`` with a reason code; the consumer counts it, logs it, and acknowledges it (a
message that can never be stored must not come back for ever).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal, NamedTuple, TypeVar

from gateway.errors import InputError
from gateway.wire.bounded_json import Limits, parse, parse_array

MAX_EVENT_BYTES: Final = 64 * 1024  # an event is well under 1 KiB
MAX_BATCH_BYTES: Final = 4 * 1024 * 1024  # mqtt.batch of 1,000 events at 4 KiB each
MAX_BATCH_EVENTS: Final = 10_000
MAX_STATUS_BYTES: Final = 256 * 1024
MAX_DEPTH: Final = 16
MAX_ID_CHARS: Final = 64
MAX_NAME_CHARS: Final = 128  # store, gateway, zone, subject ids, type
_NAME: Final = re.compile(r"[\x21-\x7e]{1,128}")  # printable ASCII, no space (topic levels)
_TS: Final = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z")

Kind = Literal["event", "batch", "status"]
_T = TypeVar("_T")


class Rejected(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


class EventRow(NamedTuple):
    """A tuple: built once per event, and a batch's columns are one ``zip``."""

    id: str
    store: str
    gateway: str
    seq: int
    type: str
    ts: datetime  # UTC, aware
    zone: str | None
    subject_kind: str | None
    subject_id: str | None
    payload: str  # the event object as JSON text


@dataclass(frozen=True, slots=True)
class StatusRow:
    store: str
    gateway: str
    state: str
    ts: datetime


@dataclass(frozen=True, slots=True)
class Topic:
    kind: Kind
    store: str
    gateway: str
    type: str | None  # the event type of a single-event topic


def classify(topic: str, prefix: str) -> Topic:
    """``{prefix}/{store}/{gateway}/event/{family}/{name}`` (the type's dots as topic levels),
    ``.../event/{type}`` (a gateway configured with ``event_topics = "dotted"``), ``.../events``
    or ``.../status``."""
    if not topic.startswith(prefix + "/"):
        raise Rejected("topic", f"topic outside {prefix}/: {topic[:100]!r}")
    levels = topic[len(prefix) + 1 :].split("/")
    if len(levels) >= 4 and levels[2] == "event":
        return Topic("event", levels[0], levels[1], ".".join(levels[3:]))
    if len(levels) == 3 and levels[2] in ("events", "status"):
        kind: Kind = "batch" if levels[2] == "events" else "status"
        return Topic(kind, levels[0], levels[1], None)
    raise Rejected("topic", f"not an event, batch or status topic: {topic[:100]!r}")


def event_rows(topic: Topic, payload: bytes) -> list[EventRow]:
    """The events of one message, in the order they came; ``Rejected`` when any is bad (a batch
    is one message: it is stored whole or not at all)."""
    if topic.kind == "event":
        doc = _parse(payload, MAX_EVENT_BYTES)
        if not isinstance(doc, dict):
            raise Rejected("schema", "an event message must hold one JSON object")
        if doc.get("type") != topic.type:
            raise Rejected("topic", f"event of type {doc.get('type')!r} on {topic.type!r}")
        return [_row(doc, topic, payload.decode())]
    items = _parse_array(payload, MAX_BATCH_BYTES)
    if not items:
        raise Rejected("schema", "a batch must be a non-empty JSON array")
    if len(items) > MAX_BATCH_EVENTS:
        raise Rejected("too_large", f"a batch of {len(items)} events exceeds {MAX_BATCH_EVENTS}")
    rows = []
    for element, text in items:
        if not isinstance(element, dict):
            raise Rejected("schema", "a batch element is not a JSON object")
        rows.append(_row(element, topic, text))
    return rows


def status_row(topic: Topic, payload: bytes) -> StatusRow | None:
    """The state and time of a ``P/status`` message; None for an empty payload (a cleared
    retained message)."""
    if not payload:
        return None
    doc = _parse(payload, MAX_STATUS_BYTES)
    if not isinstance(doc, dict):
        raise Rejected("schema", "a status must be a JSON object")
    state = doc.get("state")
    if state not in ("online", "offline"):
        raise Rejected("schema", f"status state {str(state)[:20]!r} is not online or offline")
    return StatusRow(topic.store, topic.gateway, state, _ts(doc.get("ts")))


def _parse(payload: bytes, max_bytes: int) -> object:
    return _bounded(parse, payload, max_bytes)


def _parse_array(payload: bytes, max_bytes: int) -> list[tuple[object, str]] | None:
    """A batch's events, each with its text as sent; None for JSON that is not an array."""
    return _bounded(parse_array, payload, max_bytes)


def _bounded(parser: Callable[[bytes, Limits], _T], payload: bytes, max_bytes: int) -> _T:
    # PostgreSQL's jsonb refuses \u0000 in a string; refused here, before it can fail a batch.
    if b"\\u0000" in payload:
        raise Rejected("value", "a string holds \\u0000")
    try:
        return parser(payload, Limits(max_bytes=max_bytes, max_depth=MAX_DEPTH))
    except InputError as exc:
        raise Rejected(exc.code, str(exc)) from None


def _row(doc: dict[str, object], topic: Topic, text: str) -> EventRow:
    store, gateway = doc.get("store"), doc.get("gateway")
    if store != topic.store or gateway != topic.gateway:
        raise Rejected(
            "topic", f"event of {str(store)[:64]}/{str(gateway)[:64]} on another's topic"
        )
    seq = doc.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise Rejected("schema", f"seq {str(seq)[:20]!r} is not a positive integer")
    subject = doc.get("subject")
    if subject is not None and not isinstance(subject, dict):
        raise Rejected("schema", "subject is not an object")
    subject = subject or {}
    return EventRow(
        id=_id(doc.get("id")),
        store=topic.store,
        gateway=topic.gateway,
        seq=seq,
        type=_name(doc.get("type"), "type"),
        ts=_ts(doc.get("ts")),
        zone=_optional_name(doc.get("zone"), "zone"),
        subject_kind=_optional_name(subject.get("kind"), "subject.kind"),
        subject_id=_optional_name(subject.get("id"), "subject.id"),
        payload=text,
    )


def _id(value: object) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value) or len(value) > MAX_ID_CHARS:
        raise Rejected("schema", f"id is not 1-{MAX_ID_CHARS} printable ASCII characters")
    return value


def _name(value: object, field: str) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise Rejected("schema", f"{field} is not 1-{MAX_NAME_CHARS} printable characters")
    return value


def _optional_name(value: object, field: str) -> str | None:
    return None if value is None else _name(value, field)


def _ts(value: object) -> datetime:
    if not isinstance(value, str) or not _TS.fullmatch(value):
        raise Rejected("schema", f"ts {str(value)[:40]!r} is not UTC ISO 8601 (...Z)")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise Rejected("schema", f"ts {value!r} is not a date") from None
