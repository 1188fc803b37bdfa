"""The PN532 simulator on a real pty, driven by the driver's own poller as the gateway will."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sim_far_end import FarEnd

from drivers.pn532 import (
    PN532_V1_6,
    Ack,
    CardsPresent,
    Configured,
    ErrorFrame,
    InformationFrame,
    NoCard,
    Pn532Decoder,
    Pn532Frame,
    Pn532Poller,
    PollerEvent,
    State,
)
from drivers.pn532 import commands as cmd
from drivers.pn532.frames import NACK_FRAME
from drivers.sentinel import NEED_DATA
from firmware_sim.faults import Faults
from firmware_sim.pn532 import Pn532Sim, is_pn532_id, target_for
from firmware_sim.pty import Chunking, SimPort
from firmware_sim.scenario import Scenario, Subject, Visit

pytestmark = pytest.mark.timeout(20)

MIFARE = "B0864D25"  # a captured 4-byte UID
NTAG = "0416C6C2D73881"  # nfcpy's 7-byte UID
EM = "0D00319CD0"  # an EM4100 card: invisible to a PN532


class ManualClock:
    def __init__(self, t: float = 0.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def scenario(*visits: Visit) -> Scenario:
    subjects = tuple(Subject(r, "customer") for r in (MIFARE, NTAG, EM))
    return Scenario(("door",), subjects, visits, duration=60.0)


class Host:
    """The gateway's side in miniature: poller + decoder over the far end of the pty."""

    def __init__(self, far: FarEnd, poller: Pn532Poller | None = None) -> None:
        self.far = far
        self.poller = poller or Pn532Poller()
        self.decoder = Pn532Decoder()

    async def next_frame(self, timeout: float) -> Pn532Frame | None:
        while (frame := self.decoder.next_frame()) is NEED_DATA:
            try:
                self.decoder.receive_data(await self.far.read_some(timeout))
            except TimeoutError:
                return None
        return frame

    async def step(self) -> list[PollerEvent]:
        """Wait for one frame (or the poller's time-out) and act on it."""
        timeout = self.poller.timeout_s
        assert timeout is not None
        frame = await self.next_frame(timeout)
        reaction = self.poller.timed_out() if frame is None else self.poller.receive(frame)
        self.far.write(reaction.send)
        return list(reaction.events)

    async def until(self, wanted: type[PollerEvent], limit: int = 50) -> list[PollerEvent]:
        """Run start-up and polls until an event of type ``wanted``; return all events seen."""
        events: list[PollerEvent] = []
        for _ in range(limit):
            if self.poller.state is State.OFFLINE:
                self.far.write(self.poller.start())
            elif self.poller.state is State.IDLE:
                self.far.write(self.poller.poll())
            new = await self.step()
            events += new
            if any(isinstance(e, wanted) for e in new):
                return events
        raise AssertionError(f"no {wanted.__name__} in {events}")


@contextlib.asynccontextmanager
async def chip(
    tmp_path: Path, far_ends: list[FarEnd], sim_scenario: Scenario, **kwargs: object
) -> AsyncIterator[tuple[Pn532Sim, Host]]:
    async with SimPort(tmp_path, "nfc", seed=5) as port:
        sim = Pn532Sim(port, sim_scenario, "door", **kwargs)  # type: ignore[arg-type]
        far = FarEnd(port.path)
        far_ends.append(far)
        task = asyncio.create_task(sim.run())
        try:
            yield sim, Host(far)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def test_card_kinds_and_targets() -> None:
    assert is_pn532_id(MIFARE)
    assert is_pn532_id(NTAG)
    assert not is_pn532_id(EM)
    assert target_for(MIFARE, 1).to_bytes() == bytes.fromhex("01 00 04 08 04 B0 86 4D 25")
    assert target_for(NTAG, 1).atqa == bytes.fromhex("00 44")  # as in nfcpy's test data


async def test_start_up_reports_pn532_v1_6(tmp_path: Path, far_ends: list[FarEnd]) -> None:
    async with chip(tmp_path, far_ends, scenario()) as (sim, host):
        events = await host.until(Configured)
    assert events == [Configured(PN532_V1_6)]
    assert sim.stats.commands == 3


async def test_poll_follows_the_scenario(tmp_path: Path, far_ends: list[FarEnd]) -> None:
    clock = ManualClock(1.0)
    visits = (Visit(MIFARE, "door", 0.0, 5.0), Visit(EM, "door", 0.0, 60.0))
    async with chip(tmp_path, far_ends, scenario(*visits), clock=clock) as (sim, host):
        await host.until(Configured)
        events = await host.until(CardsPresent)
        clock.t = 5.0
        assert await host.until(NoCard) == [NoCard()]
    (present,) = events
    assert isinstance(present, CardsPresent)
    assert [t.raw_id for t in present.targets] == [MIFARE]
    assert sim.stats.polls == 2
    assert sim.stats.cards_reported == 1


async def test_two_cards_with_max_tg_2(tmp_path: Path, far_ends: list[FarEnd]) -> None:
    visits = (Visit(NTAG, "door", 0.0, 5.0), Visit(MIFARE, "door", 1.0, 5.0))
    async with chip(tmp_path, far_ends, scenario(*visits), clock=ManualClock(2.0)) as (_, host):
        host.far.write(cmd.in_list_passive_target(max_tg=2))
        assert await host.next_frame(2.0) == Ack()
        reply = await host.next_frame(2.0)
    assert isinstance(reply, InformationFrame)
    assert reply.params[0] == 2
    assert reply.params == bytes([2]) + target_for(NTAG, 1).to_bytes() + (
        target_for(MIFARE, 2).to_bytes()
    )


async def test_nack_gets_the_last_response_again(tmp_path: Path, far_ends: list[FarEnd]) -> None:
    async with chip(tmp_path, far_ends, scenario()) as (_, host):
        host.far.write(cmd.get_firmware_version())
        assert await host.next_frame(2.0) == Ack()
        first = await host.next_frame(2.0)
        host.far.write(NACK_FRAME)
        assert await host.next_frame(2.0) == first


async def test_unknown_command_gets_the_syntax_error_frame(
    tmp_path: Path, far_ends: list[FarEnd]
) -> None:
    async with chip(tmp_path, far_ends, scenario()) as (sim, host):
        host.far.write(InformationFrame(0xD4, 0x58).to_bytes())  # RFRegulationTest
        assert await host.next_frame(2.0) == Ack()
        assert await host.next_frame(2.0) == ErrorFrame()
    assert sim.stats.unknown_commands == 1


async def test_poller_survives_a_faulty_link(tmp_path: Path, far_ends: list[FarEnd]) -> None:
    faults = Faults(garbage_rate=0.3, corrupt_rate=0.1, chunking=Chunking.BYTEWISE)
    visits = (Visit(MIFARE, "door", 0.0, 60.0),)
    async with chip(
        tmp_path, far_ends, scenario(*visits), clock=ManualClock(1.0), faults=faults, seed=11
    ) as (sim, host):
        found = 0
        for _ in range(3):
            events = await host.until(CardsPresent, limit=200)
            found += sum(isinstance(e, CardsPresent) for e in events)
    assert found == 3
    # Whatever was corrupted was rejected by a checksum, never taken for a frame.
    stats = host.decoder.stats
    assert sim.mangler.counts.corrupted_frames > 0
    assert stats.bad_checksum >= 1


async def test_hang_up_and_replug(tmp_path: Path, far_ends: list[FarEnd]) -> None:
    visits = (Visit(MIFARE, "door", 0.0, 60.0),)
    async with chip(tmp_path, far_ends, scenario(*visits), clock=ManualClock(1.0)) as (sim, host):
        await host.until(Configured)
        await sim.hang_up(0.05)
        with pytest.raises(OSError, match="Input/output error"):
            host.far.write(host.poller.poll())
        # The gateway reopens the path and starts over with the same poller.
        replugged = FarEnd(sim.port.path)
        far_ends.append(replugged)
        again = Host(replugged, host.poller)
        again.far.write(again.poller.start())
        events = await again.until(CardsPresent)
    assert events[0] == Configured(PN532_V1_6)
    assert sim.stats.hang_ups == 1
