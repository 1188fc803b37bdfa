"""Item moves name the customer who was in the zone: the only one, or the strongest of several."""

from __future__ import annotations

import math

import pytest

from gateway.clock import ManualClock
from gateway.events.factory import EventFactory
from gateway.events.privacy import Pseudonymizer
from gateway.reads.batch import SubjectKind, Subjects
from gateway.stages.attribution import KEEP_S, Attribution
from gateway.stages.fusion import ItemMove, MoveKind
from gateway.stages.transitions import Transition, TransitionKind

pytestmark = pytest.mark.kernels

SHELF, ENTRANCE = 1, 0


def subjects(*kinds: SubjectKind) -> Subjects:
    found = Subjects()
    for i, kind in enumerate(kinds):
        found.intern(f"{i:024X}", kind)
    return found


def enter(subject: int, t: float, zone: int = SHELF, rssi: float = math.nan) -> Transition:
    return Transition(TransitionKind.ENTER, subject, zone, t, t, rssi, 0, 1)


def leave(subject: int, t: float, since: float, zone: int = SHELF) -> Transition:
    return Transition(TransitionKind.EXIT, subject, zone, t, since, math.nan, -1, 0)


def test_the_only_customer_in_the_zone_is_named() -> None:
    a = Attribution(subjects(SubjectKind.CUSTOMER, SubjectKind.CUSTOMER))
    a.observe(enter(0, 10.0))
    a.observe(enter(1, 10.0, zone=ENTRANCE))
    claim = a.claim(SHELF, 12.0)
    assert claim is not None
    assert (claim.subject, claim.candidates, claim.basis) == (0, 1, "only")


def test_nobody_in_the_zone_names_nobody() -> None:
    a = Attribution(subjects(SubjectKind.CUSTOMER))
    a.observe(enter(0, 10.0, zone=ENTRANCE))
    assert a.claim(SHELF, 12.0) is None
    assert a.claim(SHELF, 5.0) is None


def test_items_are_not_customers() -> None:
    a = Attribution(subjects(SubjectKind.ITEM))
    a.observe(enter(0, 10.0))
    assert a.claim(SHELF, 12.0) is None


def test_of_several_the_strongest_then_the_latest_is_named_with_the_count() -> None:
    a = Attribution(subjects(*[SubjectKind.CUSTOMER] * 3))
    a.observe(enter(0, 10.0, rssi=-60.0))
    a.observe(enter(1, 11.0, rssi=-48.0))
    a.observe(enter(2, 12.0, rssi=-70.0))
    claim = a.claim(SHELF, 13.0)
    assert claim is not None
    assert (claim.subject, claim.candidates, claim.basis) == (1, 3, "strongest")
    b = Attribution(subjects(*[SubjectKind.CUSTOMER] * 2))
    b.observe(enter(0, 10.0))
    b.observe(enter(1, 11.0))
    claim = b.claim(SHELF, 13.0)
    assert claim is not None
    assert claim.subject == 1  # no RSSI: the latest to arrive


def test_a_customer_who_left_before_the_move_was_published_is_still_named() -> None:
    a = Attribution(subjects(SubjectKind.CUSTOMER, SubjectKind.CUSTOMER))
    a.observe(enter(0, 10.0))
    a.observe(leave(0, 20.0, since=10.0))
    a.observe(enter(1, 25.0))  # the next customer, after the move
    claim = a.claim(SHELF, 15.0)
    assert claim is not None
    assert (claim.subject, claim.basis) == (0, "only")
    a.observe(leave(1, 30.0 + KEEP_S + 1, since=25.0))
    assert a.claim(SHELF, 15.0) is None  # long gone: forgotten


def test_a_released_id_is_never_claimed_for_its_next_subject() -> None:
    table = subjects(SubjectKind.CUSTOMER)
    a = Attribution(table)
    a.observe(enter(0, 10.0))
    table.release([0])
    assert a.claim(SHELF, 12.0) is None


def test_the_pickup_event_carries_the_pseudonym_and_the_evidence() -> None:
    table = subjects(SubjectKind.CUSTOMER, SubjectKind.ITEM)
    pseudonymizer = Pseudonymizer("hmac-sha256", b"attribution-secret-16")
    factory = EventFactory(
        store="store-042", gateway="gw-1", zones=["entrance", "shelf-a"], devices=["door"],
        subjects=table, pseudonymizer=pseudonymizer, clock=ManualClock(),
    )  # fmt: skip
    entered = factory.from_transition(enter(0, 10.0))
    pickup = factory.item_moved(ItemMove(MoveKind.PICKUP, 1, SHELF, 12.0, -410.0, 0))
    assert pickup.customer is not None
    assert pickup.customer.id == pseudonymizer.customer_id(table.raw_ids[0])
    assert entered.subject is not None
    assert pickup.customer.id == entered.subject.id
    assert '"customer":{"id":' in pickup.to_json()
    assert '"candidates":1,"basis":"only"' in pickup.to_json()
    alone = factory.item_moved(ItemMove(MoveKind.PUTBACK, 1, ENTRANCE, 12.0, 410.0, 0))
    assert alone.customer is None
    assert "customer" not in alone.to_json()
