"""Shelf fusion, alone and in the pipeline with a manual clock."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.clock import ManualClock
from gateway.devices.base import DeviceContext
from gateway.events.factory import EventFactory
from gateway.events.privacy import Pseudonymizer
from gateway.outbox import Outbox
from gateway.pipeline import Pipeline
from gateway.reads.batch import SubjectKind, Subjects
from gateway.stages.fusion import FusionStage, ItemMove, MoveKind
from gateway.stages.presence import PresenceStage, ZoneParams
from gateway.stages.shelf import ScaleSpec, SettleParams, ShelfStage, WeightChange
from gateway.stages.transitions import Transition, TransitionKind

pytestmark = pytest.mark.kernels

SHELF, OTHER = 1, 0
SCALE = 2
ITEM = "3034257BF46DB680000003EF"  # SGTIN-96: GTIN 10614141123466, serial 1007
CARD = "C0FFEE0000000000000000AA"


def transition(kind: TransitionKind, subject: int, t: float, zone: int = SHELF) -> Transition:
    return Transition(kind, subject, zone, t, t - 10.0, float("nan"), 0, 2)


def change(delta: float, t: float, zone: int = SHELF) -> WeightChange:
    return WeightChange(SCALE, zone, t, t + 1.5, 1000.0 + delta, delta)


def stage(*kinds: SubjectKind, window: float = 5.0) -> FusionStage:
    subjects = Subjects()
    for n, kind in enumerate(kinds):
        subjects.intern(f"{n:024X}", kind)
    return FusionStage({SHELF: window}, subjects)


def test_an_exit_and_a_drop_are_one_pickup_whichever_comes_first() -> None:
    fusion = stage(SubjectKind.ITEM)
    assert fusion.feed([], [change(-410.0, 100.0)], 101.5) == []
    (move,) = fusion.feed([transition(TransitionKind.EXIT, 0, 100.3)], [], 103.0)
    assert move == ItemMove(MoveKind.PICKUP, 0, SHELF, 100.0, -410.0, SCALE)
    assert fusion.pending() == (0, 0)

    fusion = stage(SubjectKind.ITEM)
    assert fusion.feed([transition(TransitionKind.EXIT, 0, 100.3)], [], 103.0) == []
    (move,) = fusion.feed([], [change(-410.0, 100.0)], 103.1)
    assert move.kind is MoveKind.PICKUP


def test_an_enter_and_a_rise_are_one_putback() -> None:
    fusion = stage(SubjectKind.ITEM)
    moves = fusion.feed([transition(TransitionKind.ENTER, 0, 50.0)], [change(250.0, 50.4)], 52)
    assert [(m.kind, m.delta_g) for m in moves] == [(MoveKind.PUTBACK, 250.0)]


@pytest.mark.parametrize(
    ("t", "c", "why"),
    [
        (transition(TransitionKind.EXIT, 0, 100.0), change(+300.0, 100.0), "a rise is no pickup"),
        (transition(TransitionKind.ENTER, 0, 100.0), change(-300.0, 100.0), "a drop no putback"),
        (transition(TransitionKind.EXIT, 0, 100.0), change(-300.0, 106.0), "outside the window"),
        (transition(TransitionKind.EXIT, 0, 100.0, OTHER), change(-300.0, 100.0), "other zone"),
        (transition(TransitionKind.EXIT, 1, 100.0), change(-300.0, 100.0), "a customer"),
        (transition(TransitionKind.DWELL, 0, 100.0), change(-300.0, 100.0), "a dwell"),
    ],
)
def test_what_does_not_pair(t: Transition, c: WeightChange, why: str) -> None:
    fusion = stage(SubjectKind.ITEM, SubjectKind.CUSTOMER)
    assert fusion.feed([t], [c], 101.0) == [], why


def test_halves_wait_at_most_the_hold_time() -> None:
    fusion = stage(SubjectKind.ITEM)
    fusion.feed([], [change(-410.0, 100.0)], 101.5)
    fusion.feed([], [], 140.0)  # 30 s later: the drop was untagged goods
    assert fusion.pending() == (0, 0)
    assert fusion.unmatched_changes == 1
    assert fusion.feed([transition(TransitionKind.EXIT, 0, 104.0)], [], 140.1) == []


def test_each_half_is_given_up_at_its_own_hold_time_on_runs_that_bring_nothing() -> None:
    fusion = stage(SubjectKind.ITEM, SubjectKind.ITEM)
    fusion.feed([transition(TransitionKind.EXIT, 0, 100.0)], [], 100.0)
    fusion.feed([transition(TransitionKind.EXIT, 1, 110.0)], [], 110.0)
    fusion.feed([], [], 130.0)  # exactly the hold time after the first: it still waits
    assert fusion.pending() == (2, 0)
    fusion.feed([], [], 130.5)
    assert (fusion.pending(), fusion.unmatched_transitions) == ((1, 0), 1)
    (move,) = fusion.feed([], [change(-300.0, 110.2)], 131.0)  # the second still pairs
    assert move.subject == 1
    fusion.feed([], [], 200.0)
    assert fusion.pending() == (0, 0)


def test_two_items_taken_one_after_the_other_pair_by_time() -> None:
    fusion = stage(SubjectKind.ITEM, SubjectKind.ITEM)
    exits = [transition(TransitionKind.EXIT, 0, 100.2), transition(TransitionKind.EXIT, 1, 103.1)]
    drops = [change(-250.0, 103.0), change(-410.0, 100.0)]
    moves = fusion.feed(exits, drops, 106.0)
    assert [(m.subject, m.delta_g) for m in moves] == [(0, -410.0), (1, -250.0)]


@given(
    exits=st.lists(st.floats(0.0, 60.0), max_size=8),
    drops=st.lists(st.floats(0.0, 60.0), max_size=8),
    seed=st.integers(0, 2**16),
)
def test_pairs_are_one_to_one_and_within_the_window(
    exits: list[float], drops: list[float], seed: int
) -> None:
    fusion = stage(*[SubjectKind.ITEM] * len(exits), window=2.0)
    transitions = [transition(TransitionKind.EXIT, i, t) for i, t in enumerate(exits)]
    changes = [change(-100.0 - i, t) for i, t in enumerate(drops)]
    random.Random(seed).shuffle(changes)
    moves = fusion.feed(transitions, changes, 61.0)
    assert len({m.subject for m in moves}) == len(moves)
    assert len({m.delta_g for m in moves}) == len(moves)
    for m in moves:
        assert abs(exits[m.subject] - m.t) <= 2.0
    # Greedy by closeness leaves no pair that could still have been made.
    left_t = [t for i, t in enumerate(exits) if i not in {m.subject for m in moves}]
    used = {m.delta_g for m in moves}
    left_c = [c.t for c in changes if c.delta_g not in used]
    assert not any(abs(a - b) <= 2.0 for a in left_t for b in left_c)


# -- in the pipeline -------------------------------------------------------------------------


def build(tmp_path: Path) -> tuple[Pipeline, DeviceContext, ManualClock, Outbox]:
    clock = ManualClock()
    subjects = Subjects()
    outbox = Outbox.open(tmp_path / "o.db")
    factory = EventFactory(
        store="store-042",
        gateway="gw-1",
        zones=["entrance", "shelf-a"],
        devices=["door", "-", "shelf-a-scale"],
        subjects=subjects,
        pseudonymizer=Pseudonymizer("raw", None),
        clock=clock,
    )
    pipeline = Pipeline(
        stage=PresenceStage([ZoneParams("entrance", 2.0), ZoneParams("shelf-a", 60.0)]),
        factory=factory,
        outbox=outbox,
        clock=clock,
        on_stored=lambda: None,
        shelf=ShelfStage([ScaleSpec(SCALE, SHELF, SettleParams())]),
        fusion=FusionStage({SHELF: 5.0}, subjects),
    )
    ctx = DeviceContext(
        name="door",
        index=0,
        zones={1: 0, 2: 1},
        customer_prefixes=("C0FFEE",),
        subjects=subjects,
        collector=pipeline.collector,
        clock=clock,
        wake=pipeline.wake,
        on_state=lambda *_: None,
    )
    return pipeline, ctx, clock, outbox


def run(
    pipeline: Pipeline,
    ctx: DeviceContext,
    clock: ManualClock,
    seconds: float,
    grams: float,
    tag: str | None,
) -> None:
    """``seconds`` of 40 ms steps: the tag read on the shelf antenna (if given), the scale
    polled every 120 ms, the pipeline run every step, as the daemon would."""
    rng = random.Random(7)
    for i in range(round(seconds / 0.04)):
        if tag is not None:
            ctx.emit_read(tag, 2, -50.0)
        if i % 3 == 0:
            pipeline.add_weight(SCALE, grams + rng.gauss(0.0, 0.5), clock.now())
        clock.advance(0.04)
        pipeline.step(clock.now())


def stored(outbox: Outbox) -> list[dict[str, object]]:
    return [json.loads(r.body) for r in outbox.pending()]


def test_a_pickup_and_a_putback_through_the_pipeline(tmp_path: Path) -> None:
    pipeline, ctx, clock, outbox = build(tmp_path)
    run(pipeline, ctx, clock, 3.0, 1410.0, ITEM)  # the item on the shelf, read and weighed
    run(pipeline, ctx, clock, 8.0, 1000.0, None)  # taken: its 410 g and its tag are gone
    run(pipeline, ctx, clock, 3.0, 1410.0, ITEM)  # put back
    run(pipeline, ctx, clock, 3.0, 1650.0, ITEM)  # untagged goods placed beside it
    events = stored(outbox)
    kinds = [e["type"] for e in events]
    # Where the exit falls depends on how soon the presence engine decides it; the rest does not.
    assert kinds.count("presence.exit") == 1
    assert [k for k in kinds if k != "presence.exit"] == [
        "presence.enter",
        "shelf.weight",
        "item.pickup",
        "presence.enter",
        "shelf.weight",
        "item.putback",
        "shelf.weight",
    ]
    pickup, putback = (e for e in events if str(e["type"]).startswith("item."))
    for moved, delta in ((pickup, -410.0), (putback, 410.0)):
        assert moved["zone"] == "shelf-a"
        assert moved["weight_delta_g"] == pytest.approx(delta, abs=2.0)
        assert moved["subject"] == {
            "kind": "item", "id": ITEM, "gtin": "10614141123466", "serial": "1007"
        }  # fmt: skip
    untagged = events[-1]
    assert untagged["sensor"] == "shelf-a-scale"
    assert untagged["delta_g"] == pytest.approx(240.0, abs=2.0)
    assert untagged["grams"] == pytest.approx(1650.0, abs=1.0)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))


def test_a_customer_leaving_the_shelf_zone_is_no_pickup(tmp_path: Path) -> None:
    pipeline, ctx, clock, outbox = build(tmp_path)
    run(pipeline, ctx, clock, 3.0, 1410.0, CARD)
    run(pipeline, ctx, clock, 8.0, 1000.0, None)
    kinds = [e["type"] for e in stored(outbox)]
    assert "item.pickup" not in kinds
    assert kinds.count("shelf.weight") == 1
