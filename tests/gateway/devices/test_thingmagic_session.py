"""The ThingMagic session against the simulated module on a real pty: bring-up, bulk reads
through the batched scan (garbage, broken CRCs and byte-at-a-time delivery included), warnings,
the keep-alive watchdog and an unplug."""

from __future__ import annotations

import asyncio
import functools
import time
from pathlib import Path

import numpy as np
import pytest

from drivers.errors import DeviceError, DriverError
from firmware_sim.epc import customer_epc
from firmware_sim.faults import Faults
from firmware_sim.pty import Chunking, SimPort
from firmware_sim.scenario import Scenario, Subject, Visit
from firmware_sim.thingmagic import ThingMagicSim
from firmware_sim.traffic import Antenna, TrafficModel
from gateway.clock import Clock, ManualClock, SystemClock
from gateway.config import ThingMagicReader
from gateway.devices.base import DeviceContext
from gateway.devices.thingmagic import ThingMagicSession, warm_up
from gateway.devices.tick import TICK_S, Tick
from gateway.health import DeviceState
from gateway.reads.batch import ReadCollector, SubjectKind, Subjects
from tests import waiting

pytestmark = pytest.mark.timeout(30)

CUSTOMER = customer_epc("C0FFEE", 3)
ITEM = "3034257BF7194E4000001A85"
UNMAPPED = "E28011606000020496B2A5F1"  # read on antenna 3, which the config leaves out
SCENARIO = Scenario(
    zones=("entrance", "shelf-a", "back"),
    subjects=(Subject(CUSTOMER, "customer"), Subject(ITEM, "item"), Subject(UNMAPPED, "item")),
    visits=(
        Visit(CUSTOMER, "entrance", 0.0, 600.0),
        Visit(ITEM, "shelf-a", 0.0, 600.0),
        Visit(UNMAPPED, "back", 0.0, 600.0),
    ),
    duration=600.0,
)

# Sessions may end with their own DriverError when cancelled mid-exchange.
background = functools.partial(waiting.background, also=(DriverError,))
until = functools.partial(waiting.until, timeout=15.0, interval=0.02)


class Harness:
    def __init__(self, clock: Clock | None = None, tick: Tick | None = None) -> None:
        self.states: list[tuple[DeviceState, str | None]] = []
        self.subjects = Subjects()
        self.collector = ReadCollector()
        self.wakes = 0
        self.ctx = DeviceContext(
            name="door",
            index=2,
            zones={1: 0, 2: 1},
            customer_prefixes=("C0FFEE",),
            subjects=self.subjects,
            collector=self.collector,
            clock=clock or ManualClock(),
            wake=self._wake,
            on_state=lambda _name, state, detail: self.states.append((state, detail)),
            tick=tick,
        )

    def _wake(self) -> None:
        self.wakes += 1


def simulator(port: SimPort, faults: Faults | None = None) -> ThingMagicSim:
    antennas = [Antenna("door", i + 1, z) for i, z in enumerate(SCENARIO.zones)]
    model = TrafficModel(miss_rate=0.1, bleed_rate_hz=0.0)
    return ThingMagicSim(port, SCENARIO, antennas, model=model, seed=3, faults=faults)


def config(port: SimPort) -> ThingMagicReader:
    return ThingMagicReader(
        id="door",
        driver="thingmagic",
        port=str(port.path),
        antennas={1: "entrance", 2: "shelf-a", 3: "back"},
        search_timeout_ms=200,
    )


@pytest.mark.parametrize(
    "faults",
    # No corrupted frames: a broken reply during bring-up fails the attempt (retried by the
    # daemon's supervisor, not here); line noise breaks frames while streaming all the same.
    [None, Faults(garbage_rate=0.3, chunking=Chunking.BYTEWISE)],
    ids=["clean", "noisy-bytewise"],
)
async def test_reads_arrive_in_bulk_with_zones_and_kinds(
    tmp_path: Path, faults: Faults | None
) -> None:
    warm_up()
    h = Harness()
    async with SimPort(tmp_path, "door") as port:
        sim = simulator(port, faults)
        session = ThingMagicSession(config(port))
        # Antenna 3 is in the reader's plan but this context maps only 1 and 2.
        async with background(sim.run()), background(session.run(h.ctx)):
            await until(lambda: h.ctx.reads >= 60 and h.ctx.unmapped_reads > 0)
    batch = h.collector.drain()
    assert len(batch) == h.ctx.reads
    assert sorted(h.subjects.raw_ids) == sorted([CUSTOMER, ITEM])
    kinds = dict(zip(h.subjects.raw_ids, h.subjects.kinds, strict=True))
    assert kinds == {CUSTOMER: SubjectKind.CUSTOMER, ITEM: SubjectKind.ITEM}
    by_zone = {h.subjects.raw_ids[s]: z for s, z in zip(batch.subject, batch.zone, strict=True)}
    assert by_zone == {CUSTOMER: 0, ITEM: 1}
    assert set(batch.device.tolist()) == {2}
    assert np.all(batch.rssi < 0)
    assert h.wakes < h.ctx.reads or faults is not None  # clean delivery: many reads per wakeup
    assert h.states[0][0] == DeviceState.OK
    if faults is not None:
        assert session.stats.discarded_bytes > 0


async def test_warning_then_stall_then_unplug(tmp_path: Path) -> None:
    h = Harness()
    async with SimPort(tmp_path, "door") as port:
        sim = simulator(port)
        session = ThingMagicSession(config(port))
        async with background(sim.run()), background(session.run(h.ctx)) as running:
            await until(lambda: h.ctx.reads >= 5)
            await sim.send_warning()
            # Read from the history: a keep-alive may follow the warning within one tick.
            await until(lambda: (DeviceState.ERROR, "0x0505 HIGH_RETURN_LOSS") in h.states)
            await until(lambda: h.states[-1][0] == DeviceState.OK)  # the next keep-alive
            sim.stall(3.0)  # longer than 3 search cycles of 0.2 s + 1 s
            with pytest.raises(DeviceError, match="no keep-alive"):
                await asyncio.wait_for(running, 10)
    assert any(state == DeviceState.ERROR for state, _ in h.states)


async def test_a_streaming_reader_is_read_per_tick_not_per_chunk(tmp_path: Path) -> None:
    """The simulator writes its due reads every 20 ms; the session hands them over once per
    pipeline tick (80 ms by default), not once per chunk that arrives."""
    warm_up()
    h = Harness()
    async with SimPort(tmp_path, "door") as port:
        sim = simulator(port)
        session = ThingMagicSession(config(port))
        async with background(sim.run()), background(session.run(h.ctx)):
            await until(lambda: h.ctx.reads >= 5)
            wakes, reads, started = h.wakes, h.ctx.reads, time.monotonic()
            await asyncio.sleep(2.0)
            wakes, reads = h.wakes - wakes, h.ctx.reads - reads
            ticks = (time.monotonic() - started) / TICK_S
    assert reads > 2 * wakes
    assert wakes <= ticks + 4  # at most one hand-over per tick (a chunk each: ~2.5 per tick)


async def test_reads_of_one_tick_keep_the_pace_they_arrived_at(tmp_path: Path) -> None:
    """A tick's reads are not all stamped with the tick: the presence engine would take a
    tag's reads within one tick for one (dedup). They spread over the span since the port's
    last read, in order."""
    warm_up()
    h = Harness(SystemClock(), Tick(0.1))  # five of the simulator's writes per tick
    async with SimPort(tmp_path, "door") as port:
        sim = simulator(port)
        session = ThingMagicSession(config(port))
        async with background(sim.run()), background(session.run(h.ctx)):
            await until(lambda: h.ctx.reads >= 100)
    t = h.collector.drain().t
    assert np.all(np.diff(t) >= 0)
    assert len(np.unique(t)) > 0.9 * len(t)
    assert t[-1] - t[0] < 15.0


def test_coalesce_ms_is_accepted_but_no_longer_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    base = {"id": "door", "driver": "thingmagic", "port": "x", "antennas": {1: "entrance"}}
    ThingMagicSession(ThingMagicReader.model_validate(base))
    assert "coalesce_ms" not in caplog.text
    ThingMagicSession(ThingMagicReader.model_validate({**base, "coalesce_ms": 25}))
    assert "door: coalesce_ms is no longer used" in caplog.text
