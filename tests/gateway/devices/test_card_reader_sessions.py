"""The EM4100 and PN532 sessions against their simulators, on real ptys."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path

import pytest

from drivers.errors import DriverError
from firmware_sim.em4100 import Em4100Sim
from firmware_sim.faults import Faults
from firmware_sim.pn532 import Pn532Sim
from firmware_sim.pty import Chunking, SimPort
from firmware_sim.scenario import Scenario, Subject, Visit
from gateway.clock import ManualClock
from gateway.config import Em4100Reader, Pn532Reader
from gateway.devices.base import DeviceContext
from gateway.devices.em4100 import Em4100Session
from gateway.devices.pn532 import Pn532Session
from gateway.health import DeviceState
from gateway.reads.batch import ReadCollector, SubjectKind, Subjects
from tests import waiting

pytestmark = pytest.mark.timeout(20)

EM_CARD = "0D00319CD0"
NFC_CARD = "0416C6C2D73881"

# Sessions may end with their own DriverError when cancelled mid-exchange.
background = functools.partial(waiting.background, also=(DriverError,))
until = functools.partial(waiting.until, timeout=10.0, interval=0.02)


class SimClock:
    def __call__(self) -> float:
        return 1.0


def scenario(zone: str) -> Scenario:
    subjects = (Subject(EM_CARD, "customer"), Subject(NFC_CARD, "customer"))
    visits = tuple(Visit(s.raw_id, zone, 0.0, 60.0) for s in subjects)
    return Scenario((zone,), subjects, visits, duration=60.0)


def context(states: list[tuple[DeviceState, str | None]]) -> tuple[DeviceContext, Subjects]:
    subjects = Subjects()
    ctx = DeviceContext(
        name="reader",
        index=0,
        zones={0: 0},
        customer_prefixes=(),
        subjects=subjects,
        collector=ReadCollector(),
        clock=ManualClock(),
        wake=lambda: None,
        on_state=lambda _name, state, detail: states.append((state, detail)),
    )
    return ctx, subjects


async def test_em4100_session_reads_the_card_and_fails_on_unplug(tmp_path: Path) -> None:
    states: list[tuple[DeviceState, str | None]] = []
    ctx, subjects = context(states)
    faults = Faults(garbage_rate=0.3, corrupt_rate=0.2, chunking=Chunking.BYTEWISE)
    async with SimPort(tmp_path, "em") as port:
        sim = Em4100Sim(
            port, scenario("door"), "door", period_s=(0.02, 0.04), clock=SimClock(), faults=faults
        )
        config = Em4100Reader(id="em", driver="em4100", port=str(port.path), zone="door")
        session = Em4100Session(config)
        async with background(sim.run()), background(session.run(ctx)) as running:
            await until(lambda: ctx.reads >= 5)
            await sim.hang_up(0.05)
            with pytest.raises(DriverError):
                await asyncio.wait_for(running, 5)
    assert subjects.raw_ids == [EM_CARD]
    assert subjects.kinds == [SubjectKind.CUSTOMER]
    assert states[0] == (DeviceState.OK, "listening")
    assert session.stats.bad_checksum > 0


async def test_pn532_session_polls_the_card(tmp_path: Path) -> None:
    states: list[tuple[DeviceState, str | None]] = []
    ctx, subjects = context(states)
    async with SimPort(tmp_path, "nfc") as port:
        sim = Pn532Sim(port, scenario("till"), "till", clock=SimClock())
        config = Pn532Reader(
            id="nfc", driver="pn532", port=str(port.path), zone="till", poll_interval_s=0.02
        )
        session = Pn532Session(config)
        async with background(sim.run()), background(session.run(ctx)) as running:
            await until(lambda: ctx.reads >= 3)
            await sim.hang_up(0.05)
            with pytest.raises(DriverError):
                await asyncio.wait_for(running, 5)
    assert subjects.raw_ids == [NFC_CARD]
    assert subjects.kinds == [SubjectKind.CUSTOMER]
    assert states[0] == (DeviceState.OK, "PN532 v1.6, polling")
    assert sim.stats.polls >= 3
