"""Turns the presence stage's transitions (integer ids, monotonic times) into public events.

This is where privacy is applied: a customer's raw card number is replaced by its pseudonym here,
before anything is written to the outbox, so no raw id ever reaches disk or the broker unless
``privacy.customer_ids = "raw"`` says so.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence

from drivers.epc import decode_sgtin96
from gateway.clock import Clock
from gateway.events.ids import new_event_id
from gateway.events.model import (
    AnyEvent,
    Attributed,
    DeviceStatus,
    ItemMoved,
    PresenceDwell,
    PresenceEnter,
    PresenceExit,
    ShelfWeight,
    Source,
    Subject,
    format_ts,
)
from gateway.events.privacy import Pseudonymizer
from gateway.reads.batch import SubjectKind, Subjects
from gateway.stages.attribution import Attribution
from gateway.stages.fusion import ItemMove
from gateway.stages.shelf import WeightChange
from gateway.stages.transitions import Transition, TransitionKind


class EventFactory:
    def __init__(
        self,
        *,
        store: str,
        gateway: str,
        zones: Sequence[str],
        devices: Sequence[str],
        subjects: Subjects,
        pseudonymizer: Pseudonymizer,
        clock: Clock,
    ) -> None:
        self._store = store
        self._gateway = gateway
        self._zones = zones
        self._devices = devices
        self._subjects = subjects
        self._pseudonymizer = pseudonymizer
        self._clock = clock
        self._subject_cache: dict[int, Subject] = {}
        self._attribution = Attribution(subjects)
        subjects.on_release(self._forget)  # a released id will name another subject

    def from_transition(self, t: Transition) -> AnyEvent:
        self._attribution.observe(t)
        common = self._common(t.t, t.zone)
        common["subject"] = self._subject(t.subject)
        if t.kind == TransitionKind.ENTER:
            source = Source(device=self._devices[t.device], antenna=t.antenna or None)
            rssi = None if math.isnan(t.rssi) else round(t.rssi, 1)
            return PresenceEnter.model_validate({**common, "source": source, "rssi_dbm": rssi})
        since = format_ts(self._clock.wall(t.since))
        dwell = round(max(0.0, t.t - t.since), 3)
        timing = {**common, "dwell_s": dwell, "since": since}
        if t.kind == TransitionKind.DWELL:
            return PresenceDwell.model_validate(timing)
        return PresenceExit.model_validate(timing)

    def shelf_weight(self, change: WeightChange) -> ShelfWeight:
        return ShelfWeight.model_validate(
            {
                **self._common(change.t, change.zone),
                "grams": round(change.grams, 1),
                "delta_g": round(change.delta_g, 1),
                "sensor": self._devices[change.device],
            }
        )

    def item_moved(self, move: ItemMove) -> ItemMoved:
        claim = self._attribution.claim(move.zone, move.t)
        customer = None
        if claim is not None:
            who = self._subject(claim.subject).id
            customer = Attributed(id=who, candidates=claim.candidates, basis=claim.basis)
        return ItemMoved.model_validate(
            {
                **self._common(move.t, move.zone),
                "type": move.kind.value,
                "subject": self._subject(move.subject),
                "weight_delta_g": round(move.delta_g, 1),
                "customer": customer,
            }
        )

    def _common(self, t: float, zone: int) -> dict[str, object]:
        wall = self._clock.wall(t)
        return {
            "id": str(new_event_id(int(wall * 1000))),
            "ts": format_ts(wall),
            "zone": self._zones[zone],
            "store": self._store,
            "gateway": self._gateway,
        }

    def device_status(self, device: str, state: str, detail: str | None) -> DeviceStatus:
        wall = self._clock.wall(self._clock.now())
        return DeviceStatus(
            id=str(new_event_id(int(wall * 1000))),
            ts=format_ts(wall),
            device=device,
            state=state,
            detail=detail,
            store=self._store,
            gateway=self._gateway,
        )

    def _forget(self, ids: Collection[int]) -> None:
        for index in ids:
            self._subject_cache.pop(index, None)

    def subject(self, index: int) -> Subject:
        """The subject as events name it: a customer by pseudonym, an item by EPC and GTIN."""
        return self._subject(index)

    def _subject(self, index: int) -> Subject:
        cached = self._subject_cache.get(index)
        if cached is not None:
            return cached
        raw = self._subjects.raw_ids[index]
        if self._subjects.kinds[index] == SubjectKind.CUSTOMER:
            subject = Subject(kind="customer", id=self._pseudonymizer.customer_id(raw))
        else:
            sgtin = decode_sgtin96(bytes.fromhex(raw)) if len(raw) == 24 else None
            subject = Subject(
                kind="item",
                id=raw,
                gtin=sgtin.gtin14 if sgtin else None,
                serial=sgtin.serial if sgtin else None,
            )
        self._subject_cache[index] = subject
        return subject
