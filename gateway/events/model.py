"""The public event objects of docs/contract.md ("Events"), one pydantic model per type.

These models are the schema: the outbox stores what they serialise to, the uplink publishes it
unchanged, and the docs' AsyncAPI description is generated from them. ``seq`` is 0 until the
outbox assigns the real one inside the transaction that makes the event durable.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA: Final = "silentcommerce.event/v1"


def format_ts(unix_s: float) -> str:
    """UTC with millisecond precision and a Z, e.g. 2026-11-22T10:00:00.123Z."""
    stamp = datetime.fromtimestamp(unix_s, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def parse_ts(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Subject(_Model):
    kind: Literal["customer", "item"]
    id: str | None = None  # customers: pseudonym (default), raw card id, or omitted
    gtin: str | None = None  # items with an SGTIN-96 EPC: GTIN-14
    serial: str | None = None


class Source(_Model):
    device: str
    antenna: int | None = None


class EventBase(_Model):
    schema_: Literal["silentcommerce.event/v1"] = Field(SCHEMA, alias="schema")
    id: str
    seq: int = 0
    type: str
    ts: str
    store: str
    gateway: str
    zone: str | None = None
    subject: Subject | None = None

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, exclude_none=True)


class PresenceEnter(EventBase):
    type: Literal["presence.enter"] = "presence.enter"
    source: Source
    rssi_dbm: float | None = None


class PresenceDwell(EventBase):
    type: Literal["presence.dwell"] = "presence.dwell"
    dwell_s: float
    since: str


class PresenceExit(EventBase):
    type: Literal["presence.exit"] = "presence.exit"
    dwell_s: float
    since: str


class Attributed(_Model):
    """The customer an item move is attributed to (docs/shelves.md, "Who picked it up")."""

    id: str | None = None  # pseudonymized like every customer id; omitted with customer_ids=omit
    candidates: int  # customers in the zone at the time
    basis: Literal["only", "strongest"]


class ItemMoved(EventBase):
    type: Literal["item.pickup", "item.putback"]
    weight_delta_g: float | None = None
    customer: Attributed | None = None  # absent when no customer was in the zone


class ShelfWeight(EventBase):
    type: Literal["shelf.weight"] = "shelf.weight"
    grams: float
    delta_g: float
    sensor: str


class DeviceStatus(EventBase):
    type: Literal["device.status"] = "device.status"
    device: str
    state: str
    detail: str | None = None


class ActionExecuted(EventBase):
    """A local rule acted on an output (docs/rules.md); ``zone`` and ``subject`` are those of
    the triggering event, so the central side can join exposures to pickups."""

    type: Literal["action.executed"] = "action.executed"
    rule: str
    trigger: str  # the id of the event that made the rule fire
    output: str
    action: str  # show | clear | switch | blink
    ok: bool
    error: str | None = None
    latency_ms: float  # from the rule firing to the output's acknowledgement (or giving up)
    attempts: int = 1


AnyEvent = (
    PresenceEnter
    | PresenceDwell
    | PresenceExit
    | ItemMoved
    | ShelfWeight
    | DeviceStatus
    | ActionExecuted
)
Event = Annotated[AnyEvent, Field(discriminator="type")]
EVENT_TYPES: Final = (
    "presence.enter",
    "presence.dwell",
    "presence.exit",
    "item.pickup",
    "item.putback",
    "shelf.weight",
    "device.status",
    "action.executed",
)
