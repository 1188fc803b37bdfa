"""The EM4100 reader simulator on a real pty, read back with the driver's decoder."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sim_far_end import FarEnd

from drivers.em4100 import Em4100Decoder, Em4100Frame, Style
from firmware_sim.em4100 import Em4100Sim, corrupt_checksum, is_em4100_id
from firmware_sim.faults import Faults
from firmware_sim.pty import Chunking, SimPort
from firmware_sim.scenario import Scenario, Subject, Visit

pytestmark = pytest.mark.timeout(20)

CARD = "0D00319CD0"  # arduino-esp32 issue #1405
OTHER = "1F00644BB6"
EPC = "C0FFEE000000000000000001"  # a UHF loyalty card: not this reader's business
FAST = (0.02, 0.04)


def scenario(*visits: Visit) -> Scenario:
    subjects = tuple(Subject(r, "customer") for r in (CARD, OTHER, EPC))
    return Scenario(("door", "till"), subjects, visits, duration=60.0)


class ManualClock:
    def __init__(self, t: float = 0.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@contextlib.asynccontextmanager
async def running(sim: Em4100Sim) -> AsyncIterator[None]:
    task = asyncio.create_task(sim.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def collect(
    far: FarEnd, decoder: Em4100Decoder, until: Callable[[list[Em4100Frame]], bool]
) -> list[Em4100Frame]:
    frames: list[Em4100Frame] = []
    async with asyncio.timeout(10):
        while not until(frames):
            decoder.receive_data(await far.read_some(5))
            frames.extend(decoder.frames())
    return frames


def hung_up(far: FarEnd) -> bool:
    """Whether the far end sees end-of-file or EIO, as from a USB adapter pulled out."""
    try:
        while os.read(far.fd, 4096):
            pass
    except BlockingIOError:
        return False
    except OSError:
        return True
    return True


def test_raw_id_kinds() -> None:
    assert is_em4100_id(CARD)
    assert not is_em4100_id(EPC)
    assert not is_em4100_id("B0864D25")


def test_corrupted_checksum_is_only_caught_by_the_xor() -> None:
    frame = Em4100Frame.from_raw_id(CARD).to_bytes()
    bad = corrupt_checksum(frame, random.Random(1))
    decoder = Em4100Decoder()
    decoder.receive_data(bad)
    assert list(decoder.frames()) == []
    assert decoder.stats.bad_checksum == 1
    assert len(bad) == len(frame)


@pytest.mark.parametrize("style", ["rdm6300", "id12"])
async def test_card_in_zone_is_repeated_and_nothing_else_is_sent(
    tmp_path: Path, far_ends: list[FarEnd], style: Style
) -> None:
    clock = ManualClock(1.0)
    visits = (Visit(CARD, "door", 0.0, 5.0), Visit(OTHER, "till", 0.0, 5.0))
    async with SimPort(tmp_path, "em") as port:
        sim = Em4100Sim(port, scenario(*visits), "door", style=style, period_s=FAST, clock=clock)
        far = FarEnd(port.path)
        far_ends.append(far)
        decoder = Em4100Decoder()
        async with running(sim):
            frames = await collect(far, decoder, lambda f: len(f) >= 5)
            clock.t = 6.0  # the customer has left
            await asyncio.sleep(0.1)
            with contextlib.suppress(OSError):
                os.read(far.fd, 4096)  # drop what was in flight at the change
            with pytest.raises(TimeoutError):
                await far.read_some(0.2)
    assert {f.raw_id for f in frames} == {CARD}
    assert decoder.stats.discarded_bytes == 0
    assert sim.sent[0].raw_id == CARD


async def test_earliest_card_wins_until_it_leaves(tmp_path: Path) -> None:
    visits = (Visit(CARD, "door", 0.0, 2.0), Visit(OTHER, "door", 1.0, 5.0))
    async with SimPort(tmp_path, "em") as port:
        sim = Em4100Sim(port, scenario(*visits), "door")
        assert sim.card_in_field(0.5) == CARD
        assert sim.card_in_field(1.5) == CARD
        assert sim.card_in_field(3.0) == OTHER
        assert sim.card_in_field(5.0) is None


async def test_faults_are_all_counted_by_the_decoder(
    tmp_path: Path, far_ends: list[FarEnd]
) -> None:
    faults = Faults(garbage_rate=0.5, corrupt_rate=0.3, chunking=Chunking.BYTEWISE)
    visits = (Visit(CARD, "door", 0.0, 60.0),)
    async with SimPort(tmp_path, "em", seed=3) as port:
        sim = Em4100Sim(
            port,
            scenario(*visits),
            "door",
            period_s=FAST,
            seed=7,
            clock=ManualClock(),
            faults=faults,
        )
        far = FarEnd(port.path)
        far_ends.append(far)
        decoder = Em4100Decoder()
        async with running(sim):
            await collect(far, decoder, lambda f: len(f) >= 12)
            sim.faults = Faults()  # a clean frame last, so nothing is left half-read
            await collect(far, decoder, lambda f: decoder.stats.frames >= sim.mangler.counts.frames)
    counts = sim.mangler.counts
    assert counts.corrupted_frames > 0
    assert counts.garbage_bytes > 0
    # Every intact frame was decoded, every corrupted one rejected: none lost next to garbage.
    assert decoder.stats.frames >= counts.frames - 1
    assert decoder.stats.bad_checksum == counts.corrupted_frames
    assert decoder.stats.discarded_bytes >= counts.garbage_bytes


async def test_hang_up_and_replug(tmp_path: Path, far_ends: list[FarEnd]) -> None:
    visits = (Visit(CARD, "door", 0.0, 60.0),)
    async with SimPort(tmp_path, "em") as port:
        sim = Em4100Sim(port, scenario(*visits), "door", period_s=FAST, clock=ManualClock())
        far = FarEnd(port.path)
        far_ends.append(far)
        async with running(sim):
            await collect(far, Em4100Decoder(), lambda f: len(f) >= 1)
            await sim.hang_up(0.1)
            assert hung_up(far)
            replugged = FarEnd(port.path)
            far_ends.append(replugged)
            frames = await collect(replugged, Em4100Decoder(), lambda f: len(f) >= 2)
    assert sim.hang_ups == 1
    assert {f.raw_id for f in frames} == {CARD}


async def test_stall_holds_frames_back(tmp_path: Path, far_ends: list[FarEnd]) -> None:
    visits = (Visit(CARD, "door", 0.0, 60.0),)
    async with SimPort(tmp_path, "em") as port:
        sim = Em4100Sim(port, scenario(*visits), "door", period_s=FAST, clock=ManualClock())
        far = FarEnd(port.path)
        far_ends.append(far)
        async with running(sim):
            await collect(far, Em4100Decoder(), lambda f: len(f) >= 1)
            sim.stall(0.4)
            await asyncio.sleep(0.05)  # let a frame already being written finish
            with contextlib.suppress(BlockingIOError):
                os.read(far.fd, 4096)
            with pytest.raises(TimeoutError):
                await far.read_some(0.25)
            frames = await collect(far, Em4100Decoder(), lambda f: len(f) >= 2)
    assert {f.raw_id for f in frames} == {CARD}
