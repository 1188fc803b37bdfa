"""A reader that sends only garbage does not stay ``ok``: sessions against their simulators on
real ptys, the simulators' own fault injection turning every frame into line noise and broken
frames, and the context's clock moved by hand past the window."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from drivers.errors import DeviceError, DriverError
from firmware_sim.em4100 import Em4100Sim
from firmware_sim.faults import Faults
from firmware_sim.pn532 import Pn532Sim
from firmware_sim.pty import SimPort
from firmware_sim.scenario import Scenario, Subject, Visit
from firmware_sim.thingmagic import ThingMagicSim
from firmware_sim.traffic import Antenna, TrafficModel
from gateway.clock import ManualClock
from gateway.config import Em4100Reader, Pn532Reader, ThingMagicReader
from gateway.devices.base import DeviceContext
from gateway.devices.em4100 import Em4100Session
from gateway.devices.pn532 import Pn532Session
from gateway.devices.thingmagic import ThingMagicSession, warm_up
from gateway.health import DeviceState
from gateway.reads.batch import ReadCollector, Subjects
from tests import waiting

pytestmark = pytest.mark.timeout(30)

CARD = "0D00319CD0"
NFC_CARD = "0416C6C2D73881"
EPC = "3034257BF7194E4000001A85"
ONLY_GARBAGE = Faults(garbage_rate=1.0, corrupt_rate=1.0)  # noise, then a broken frame
GARBAGE_DETAIL = re.compile(r"no valid frame in 10 s \((\d+) bytes of garbage\)")

background = functools.partial(waiting.background, also=(DriverError,))
until = functools.partial(waiting.until, timeout=15.0, interval=0.01)


class Reader:
    """A device context on a hand-moved clock, and the states it went through."""

    def __init__(self, zones: dict[int, int]) -> None:
        self.clock = ManualClock()
        self.states: list[tuple[DeviceState, str | None]] = []
        self.ctx = DeviceContext(
            name="reader",
            index=0,
            zones=zones,
            customer_prefixes=(),
            subjects=Subjects(),
            collector=ReadCollector(),
            clock=self.clock,
            wake=lambda: None,
            on_state=lambda _name, state, detail: self.states.append((state, detail)),
        )


def scenario(raw_id: str, zone: str, kind: str) -> Scenario:
    visit = Visit(raw_id, zone, 0.0, 600.0)
    return Scenario((zone,), (Subject(raw_id, kind),), (visit,), duration=600.0)


async def garbage_until_error(reader: Reader, discarded: Callable[[], int]) -> str:
    """Let garbage arrive while the clock moves on 2.5 s at a time, until the reader is in
    error (the window is 10 s); return the error's detail. Few steps: each waits for a chunk in
    real time, and a ThingMagic reader whose keep-alives stay away for 1.6 s of real time is
    taken for stalled before its garbage has lasted the window."""
    # The bytes in flight when the fault began come first, and a valid frame among them starts
    # the spell again at the next chunk: after two chunks of garbage at this same instant of the
    # clock, the spell has started at it, whichever chunk that was.
    for _ in range(2):
        before = discarded()
        await until(lambda: discarded() > before)  # noqa: B023  (awaited within the turn)
    for _ in range(4):
        before = discarded()
        await until(lambda: discarded() > before)  # noqa: B023  (awaited within the turn)
        assert reader.ctx.state == DeviceState.OK  # garbage alone, not yet for long enough
        reader.clock.advance(2.5)
    await until(lambda: reader.ctx.state == DeviceState.ERROR)
    detail = reader.ctx.detail or ""
    m = GARBAGE_DETAIL.fullmatch(detail)
    assert m is not None, detail
    assert int(m.group(1)) > 0
    return detail


async def test_an_em4100_reader_sending_only_garbage_is_in_error_until_a_valid_frame(
    tmp_path: Path,
) -> None:
    reader = Reader({0: 0})
    async with SimPort(tmp_path, "em") as port:
        sim = Em4100Sim(
            port, scenario(CARD, "door", "customer"), "door", period_s=(0.01, 0.02),
            clock=lambda: 1.0,
        )  # fmt: skip
        config = Em4100Reader(id="em", driver="em4100", port=str(port.path), zone="door")
        session = Em4100Session(config)
        async with background(sim.run()), background(session.run(reader.ctx)):
            await until(lambda: reader.ctx.reads >= 3)
            sim.faults = ONLY_GARBAGE
            reads = reader.ctx.reads
            await garbage_until_error(reader, lambda: session.stats.discarded_bytes)
            assert reader.ctx.reads == reads  # nothing but garbage came meanwhile
            sim.faults = Faults()
            await until(lambda: reader.ctx.state == DeviceState.OK)
    errors = [s for s in reader.states if s[0] == DeviceState.ERROR]
    assert len(errors) == 1  # one change of state, however many chunks of garbage
    assert reader.states[-1] == (DeviceState.OK, "listening")


async def test_a_thingmagic_reader_streaming_only_garbage_is_in_error_until_a_valid_frame(
    tmp_path: Path,
) -> None:
    warm_up()
    reader = Reader({1: 0})
    async with SimPort(tmp_path, "door") as port:
        model = TrafficModel(miss_rate=0.1, bleed_rate_hz=0.0)
        antennas = [Antenna("door", 1, "door")]
        sim = ThingMagicSim(port, scenario(EPC, "door", "item"), antennas, model=model, seed=3)
        config = ThingMagicReader(
            id="door", driver="thingmagic", port=str(port.path), antennas={1: "door"},
            search_timeout_ms=200,
        )  # fmt: skip
        session = ThingMagicSession(config)
        async with background(sim.run()), background(session.run(reader.ctx)):
            await until(lambda: reader.ctx.reads >= 5)
            sim.faults = ONLY_GARBAGE
            await garbage_until_error(reader, lambda: session.stats.discarded_bytes)
            sim.faults = Faults()
            await until(lambda: reader.ctx.state == DeviceState.OK)
    assert [s for s, _ in reader.states].count(DeviceState.ERROR) == 1


async def noise(port: SimPort, rng: random.Random) -> None:
    """Line noise that never stops, whatever the host sends."""
    while True:
        await port.write(rng.randbytes(8))
        await asyncio.sleep(0.01)


async def test_a_pn532_on_a_line_of_constant_noise_does_not_stay_ok(tmp_path: Path) -> None:
    reader = Reader({0: 0})
    async with SimPort(tmp_path, "nfc") as port:
        sim = Pn532Sim(port, scenario(NFC_CARD, "till", "customer"), "till", clock=lambda: 1.0)
        config = Pn532Reader(
            id="nfc", driver="pn532", port=str(port.path), zone="till", poll_interval_s=0.02
        )
        session = Pn532Session(config)
        async with background(sim.run()) as simulating, background(session.run(reader.ctx)) as s:
            await until(lambda: reader.ctx.reads >= 3)
            simulating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await simulating
            # Each chunk of noise used to restart the wait for the chip's answer: never lost.
            async with background(noise(port, random.Random(7))):
                with pytest.raises(DeviceError, match="lost 3 exchanges in a row"):
                    await asyncio.wait_for(s, 10)
