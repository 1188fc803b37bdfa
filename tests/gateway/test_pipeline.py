"""The pipeline with a manual clock: reads in, durable events out, no sleeping."""

from __future__ import annotations

import asyncio
import json
import math
import os
import tty
from pathlib import Path

import pytest

from gateway.clock import ManualClock, SystemClock
from gateway.devices.base import DeviceContext
from gateway.events.factory import EventFactory
from gateway.events.privacy import Pseudonymizer
from gateway.health import DeviceState
from gateway.outbox import Outbox
from gateway.pipeline import DEFER_MAX_S, Pipeline
from gateway.reads.batch import SubjectKind, Subjects
from gateway.service.warmup import warm_up_kernels
from gateway.stages.presence import EngineParams, PresenceStage, ZoneParams
from tests import waiting

pytestmark = pytest.mark.kernels

CARD = "C0FFEE0000000000000000AA"
ITEM = "3034257BF46DB680000003EF"  # SGTIN-96: GTIN 10614141123466, serial 1007


def build(tmp_path: Path) -> tuple[Pipeline, DeviceContext, ManualClock, Outbox]:
    clock = ManualClock()
    subjects = Subjects()
    outbox = Outbox.open(tmp_path / "o.db")
    factory = EventFactory(
        store="store-042",
        gateway="gw-1",
        zones=["entrance", "shelf-a"],
        devices=["door"],
        subjects=subjects,
        pseudonymizer=Pseudonymizer("raw", None),
        clock=clock,
    )
    stage = PresenceStage([ZoneParams("entrance", 2.0), ZoneParams("shelf-a", 5.0)])
    pipeline = Pipeline(
        stage=stage, factory=factory, outbox=outbox, clock=clock, on_stored=lambda: None
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


def stored(outbox: Outbox) -> list[dict[str, object]]:
    return [json.loads(r.body) for r in outbox.pending()]


def read_for(
    ctx: DeviceContext, clock: ManualClock, raw: str, antenna: int, seconds: float
) -> None:
    """A tag read every 50 ms on one antenna for ``seconds``."""
    for _ in range(int(seconds / 0.05 + 1e-9)):
        ctx.emit_read(raw, antenna, -50.0)
        clock.advance(0.05)


def test_a_visit_becomes_enter_dwell_exit_in_order(tmp_path: Path) -> None:
    pipeline, ctx, clock, outbox = build(tmp_path)
    for _ in range(30):  # 3 s at the entrance, processed every 100 ms as the daemon would
        read_for(ctx, clock, CARD, 1, 0.1)
        pipeline.step(clock.now())
    for _ in range(50):  # then silence: the exit comes from time passing alone
        clock.advance(0.1)
        pipeline.step(clock.now())
    events = stored(outbox)
    assert [e["type"] for e in events] == ["presence.enter", "presence.dwell", "presence.exit"]
    assert [e["seq"] for e in events] == [1, 2, 3]
    enter, dwell, exit_ = events
    assert enter["subject"] == {"kind": "customer", "id": CARD}
    assert enter["source"] == {"device": "door", "antenna": 1}
    assert enter["zone"] == "entrance"
    assert dwell["dwell_s"] == 2.0
    assert math.isclose(float(exit_["dwell_s"]), 3.0, abs_tol=0.15)  # type: ignore[arg-type]
    assert exit_["since"] == enter["ts"]


def test_items_carry_gtin_and_serial(tmp_path: Path) -> None:
    pipeline, ctx, clock, outbox = build(tmp_path)
    read_for(ctx, clock, ITEM, 2, 0.5)
    pipeline.step(clock.now())
    (enter,) = stored(outbox)
    assert enter["subject"] == {
        "kind": "item", "id": ITEM, "gtin": "10614141123466", "serial": "1007"
    }  # fmt: skip


def test_reads_on_an_unmapped_antenna_are_counted_not_used(tmp_path: Path) -> None:
    pipeline, ctx, clock, outbox = build(tmp_path)
    read_for(ctx, clock, ITEM, 4, 0.5)
    pipeline.step(clock.now())
    assert stored(outbox) == []
    assert ctx.unmapped_reads == 10


def test_device_status_events_are_stored_with_the_next_run(tmp_path: Path) -> None:
    pipeline, _, clock, outbox = build(tmp_path)
    factory_event = pipeline._factory.device_status("door", DeviceState.DOWN.value, "unplugged")
    pipeline.add_event(factory_event)
    pipeline.step(clock.now())
    (event,) = stored(outbox)
    assert (event["type"], event["device"], event["state"]) == ("device.status", "door", "down")
    assert "zone" not in event


async def test_a_stream_runs_the_pipeline_once_per_tick_and_silence_parks_it(
    tmp_path: Path,
) -> None:
    """Chunks every 5 ms from a streaming port, a 100 ms tick: the pipeline runs about once a
    tick, every read gets in, and after the stream stops the loop only wakes when it must."""
    warm_up_kernels()  # as the daemon does before READY: a compile would stall the stream
    clock = SystemClock()
    subjects = Subjects()
    outbox = Outbox.open(tmp_path / "o.db")
    factory = EventFactory(
        store="s", gateway="g", zones=["entrance"], devices=["door"], subjects=subjects,
        pseudonymizer=Pseudonymizer("raw", None), clock=clock,
    )  # fmt: skip
    # Real time: a window of at least 3 s, so that a loaded machine that does not run this
    # process for a few hundred ms does not end the visit halfway (an exit and a second enter),
    # and so that the exit is not due yet when the test stops looking: the last reads may wait
    # up to DEFER_MAX_S for a run before they are counted, then the port parks, then 0.5 s.
    stage = PresenceStage(
        [ZoneParams("entrance", 0.5)],
        EngineParams(min_window_s=3.0, max_window_s=3.0),
        subjects=subjects,
    )
    pipeline = Pipeline(
        stage=stage, factory=factory, outbox=outbox, clock=clock, on_stored=lambda: None,
        tick_s=0.1,
    )  # fmt: skip
    ctx = DeviceContext(
        name="door", index=0, zones={0: 0}, customer_prefixes=(), subjects=subjects,
        collector=pipeline.collector, clock=clock, wake=pipeline.wake, on_state=lambda *_: None,
        tick=pipeline.tick,
    )  # fmt: skip

    def consume(data: bytes, _span: float) -> bool:
        for _ in range(data.count(b"R")):
            ctx.emit_read(CARD, 0, kind=SubjectKind.CUSTOMER)
        return True

    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(slave, False)
    try:
        with pipeline.tick.attach(slave, "door", consume) as port:
            async with waiting.background(pipeline.run()):
                for _ in range(200):
                    os.write(master, b"R")
                    await asyncio.sleep(0.005)
                await waiting.until(lambda: pipeline.reads_total == 200)
                runs = pipeline.batches
                await waiting.until(lambda: not port.ticking)
                quiet = pipeline.batches
                await asyncio.sleep(0.5)
                idle = pipeline.batches - quiet
    finally:
        os.close(master)
        os.close(slave)
        outbox.close()
    assert runs <= 1.5 * (200 * 0.005 / 0.1) + 4  # ~one run a tick (sleeps overshoot 5 ms)
    assert [e["type"] for e in stored_of(tmp_path)] == ["presence.enter", "presence.dwell"]
    assert idle <= 2  # the exit is not due yet: nothing to run for, a run a second at most


def stored_of(tmp_path: Path) -> list[dict[str, object]]:
    outbox = Outbox.open(tmp_path / "o.db")
    try:
        return stored(outbox)
    finally:
        outbox.close()


def test_reads_that_only_refresh_a_visit_wait_and_anything_new_makes_a_run_due(
    tmp_path: Path,
) -> None:
    pipeline, ctx, clock, _ = build(tmp_path)
    for _ in range(10):  # the card enters the entrance
        read_for(ctx, clock, CARD, 1, 0.1)
        pipeline.step(clock.now())
    assert pipeline._stage.present()
    read_for(ctx, clock, CARD, 1, 0.1)
    assert not pipeline.due(clock.now())  # the card is where it was: its reads may wait
    ctx.emit_read(ITEM, 1, -50.0)
    assert pipeline.due(clock.now())  # a subject never seen
    pipeline.step(clock.now())
    read_for(ctx, clock, CARD, 1, 0.1)
    assert not pipeline.due(clock.now())
    ctx.emit_read(CARD, 2, -50.0)
    assert pipeline.due(clock.now())  # a read in another zone may move it
    pipeline.step(clock.now())
    pipeline.add_event(pipeline._factory.device_status("door", DeviceState.DOWN.value, "gone"))
    assert pipeline.due(clock.now())  # an event waits to be stored
    pipeline.step(clock.now())
    clock.advance(DEFER_MAX_S)
    assert pipeline.due(clock.now())  # a second since the last run


def test_a_run_only_when_due_decides_what_a_run_every_tick_does(tmp_path: Path) -> None:
    """Two pipelines on the same reads: one runs at every 50 ms tick, the other only when
    ``due``; their events are the same, with the same times."""
    (a, ctx_a, clock_a, outbox_a), (b, ctx_b, clock_b, outbox_b) = (
        build(tmp_path / "every"), build(tmp_path / "due"),
    )  # fmt: skip
    plan = [(CARD, 1, 2.0), (ITEM, 2, 1.0), (CARD, 2, 3.0), ("", 0, 6.0), (CARD, 1, 1.5)]
    runs = {"every": 0, "due": 0}
    for raw, antenna, seconds in plan:
        for _ in range(int(seconds / 0.05 + 1e-9)):
            for ctx, clock in ((ctx_a, clock_a), (ctx_b, clock_b)):
                if raw:
                    ctx.emit_read(raw, antenna, -50.0)
                clock.advance(0.05)
            a.step(clock_a.now())
            runs["every"] += 1
            if b.due(clock_b.now()):
                b.step(clock_b.now())
                runs["due"] += 1
    a.flush(clock_a.now())
    b.flush(clock_b.now())

    def seen(outbox: Outbox) -> list[tuple[object, ...]]:
        return [(e["type"], e.get("zone"), e.get("ts")) for e in stored(outbox)]

    assert seen(outbox_a) == seen(outbox_b)
    assert {"presence.enter", "presence.exit", "presence.dwell"} <= {e[0] for e in seen(outbox_a)}
    assert runs["due"] < runs["every"] / 2
