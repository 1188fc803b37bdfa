"""Forgetting subjects: state and ids stay as large as the subjects seen recently.

A subject in no zone and not read for ``forget_after_s`` has its row reset and its id released
(``Subjects.release``); everyone who keeps something per id drops it, so a reused id never
speaks for the subject that had it before.
"""

from __future__ import annotations

import math

import pytest

from gateway.clock import ManualClock
from gateway.devices.base import DeviceContext
from gateway.events.factory import EventFactory
from gateway.events.privacy import Pseudonymizer
from gateway.reads.batch import ReadBatch, ReadCollector, SubjectKind, Subjects
from gateway.stages.fusion import FusionStage
from gateway.stages.presence import PresenceStage, ZoneParams
from gateway.stages.transitions import Transition, TransitionKind
from tests.epcs import emit

pytestmark = pytest.mark.kernels

ENTER, EXIT = TransitionKind.ENTER, TransitionKind.EXIT
ZONES = [ZoneParams("entrance", dwell_s=30.0), ZoneParams("shelf-a", dwell_s=30.0)]
FORGET_S = 60.0


def visit(subject: int, zone: int, t0: float, seconds: float = 2.0) -> ReadBatch:
    n = round(seconds * 10)
    return ReadBatch.from_columns(
        [t0 + i / 10 for i in range(n)], [subject] * n, [zone] * n, [-50.0] * n, [0] * n, [1] * n
    )


def raw(n: int) -> str:
    return f"30{n:022X}"


def test_a_long_stream_of_new_tags_keeps_the_state_bounded() -> None:
    subjects = Subjects()
    stage = PresenceStage(ZONES, subjects=subjects, forget_after_s=FORGET_S)
    enters = 0
    for n in range(5000):  # a new tag every second, each seen for 2 s, never again
        s = subjects.intern(raw(n), SubjectKind.ITEM)
        out = stage.feed(visit(s, n % 2, float(n)), n + 2.0)
        enters += sum(tr.kind == ENTER for tr in out)
    assert enters == 5000
    # About forget_after_s * (1 + 1/FORGET_SWEEPS) tags are remembered at any time, not 5000.
    assert len(subjects.raw_ids) <= 128
    assert stage.capacity <= 128
    assert len(subjects) <= 80
    assert stage.forgotten_total >= 5000 - 80


def test_a_forgotten_subject_that_comes_back_enters_afresh() -> None:
    subjects = Subjects()
    stage = PresenceStage(ZONES, subjects=subjects, forget_after_s=FORGET_S)
    a = subjects.intern(raw(1), SubjectKind.ITEM)
    assert [tr.kind for tr in stage.feed(visit(a, 1, 0.0), 2.0)] == [ENTER]
    assert [tr.kind for tr in stage.feed(ReadBatch.empty(), 10.0)] == [EXIT]
    stage.feed(ReadBatch.empty(), 50.0)
    assert subjects.raw_ids[a] == raw(1)  # not yet: read 50 s ago
    stage.feed(ReadBatch.empty(), 100.0)
    assert subjects.raw_ids[a] == ""
    assert stage.forgotten_total == 1
    b = subjects.intern(raw(2), SubjectKind.CUSTOMER)
    assert b == a  # the freed id is reused
    again = subjects.intern(raw(1), SubjectKind.ITEM)
    assert again != a
    out = stage.feed(visit(again, 1, 120.0), 122.0)
    assert [(tr.kind, tr.subject, tr.since) for tr in out] == [(ENTER, again, 120.0)]


def test_a_subject_in_a_zone_or_read_recently_is_kept() -> None:
    subjects = Subjects()
    stage = PresenceStage(ZONES, subjects=subjects, forget_after_s=FORGET_S)
    staying = subjects.intern(raw(1), SubjectKind.ITEM)
    stray = subjects.intern(raw(2), SubjectKind.ITEM)
    one_read = ReadBatch.from_columns([0.5], [stray], [0], [-50.0], [0], [1])
    stage.feed(one_read, 0.5)  # one read: no visit, but a read
    for k in range(200):  # the item stays on its shelf for 200 s
        stage.feed(visit(staying, 1, float(k), 1.0), k + 1.0)
    assert stage.present() == {staying: 1}
    assert subjects.raw_ids[staying] == raw(1)
    assert subjects.raw_ids[stray] == ""  # its single read was 200 s ago


def test_no_one_keeps_a_released_id_for_the_old_subject() -> None:
    subjects, clock, collector = Subjects(), ManualClock(), ReadCollector()
    factory = EventFactory(
        store="s", gateway="g", zones=["entrance", "shelf-a"], devices=["uhf"],
        subjects=subjects, pseudonymizer=Pseudonymizer("raw", None), clock=clock,
    )  # fmt: skip
    fusion = FusionStage({1: 5.0}, subjects)
    ctx = DeviceContext(
        name="uhf", index=0, zones={1: 0, 2: 1}, customer_prefixes=("C0FFEE",),
        subjects=subjects, collector=collector, clock=clock, wake=lambda: None,
        on_state=lambda *_: None,
    )  # fmt: skip
    old_epc = bytes.fromhex("3034257BF7194E4000000001")
    emit(ctx, [old_epc], [2], [-50.0])
    (old,) = collector.drain().subject.tolist()
    exit_ = Transition(EXIT, old, 1, 1.0, 0.0, math.nan, -1, -1)
    assert factory.from_transition(exit_).subject.id == old_epc.hex().upper()
    fusion.feed([exit_], [], 1.0)
    assert fusion.pending() == (1, 0)

    subjects.release([old])
    assert fusion.pending() == (0, 0)
    new = subjects.intern("C0FFEE000000000000000099", SubjectKind.CUSTOMER)
    assert new == old
    enter = Transition(ENTER, new, 0, 2.0, 2.0, -50.0, 0, 1)
    assert factory.from_transition(enter).subject.kind == "customer"
    # The reader's EPC cache forgot the old tag: read again, it is interned anew.
    emit(ctx, [old_epc], [2], [-50.0])
    (back,) = collector.drain().subject.tolist()
    assert back not in (old, new)
    assert subjects.raw_ids[back] == old_epc.hex().upper()
