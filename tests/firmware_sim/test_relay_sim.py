"""The relay board simulator over a real pty, driven with the driver's own commands."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sim_far_end import FarEnd

from drivers.relay import BAUDRATE, STATUS_QUERY, ChannelStatus, RelayCommand, StatusDecoder
from drivers.sentinel import NEED_DATA
from drivers.transport import open_serial
from firmware_sim.pty import SimPort
from firmware_sim.relay import RelayBoardSim

pytestmark = pytest.mark.timeout(10)


@pytest.fixture
async def board(tmp_path: Path) -> AsyncIterator[tuple[RelayBoardSim, FarEnd]]:
    async with SimPort(tmp_path, "relay") as port:
        sim = RelayBoardSim(port, channels=2)
        task = asyncio.create_task(sim.run())
        far = FarEnd(port.path)
        try:
            yield sim, far
        finally:
            far.close()
            port.close()
            await asyncio.wait_for(task, 2)


async def settle(condition: object, timeout: float = 2.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.005)


async def status(far: FarEnd, lines: int) -> list[ChannelStatus]:
    far.write(STATUS_QUERY)
    decoder, out = StatusDecoder(), []
    async with asyncio.timeout(2):
        while len(out) < lines:
            decoder.receive_data(await far.read_some())
            while (line := decoder.next_frame()) is not NEED_DATA:
                out.append(line)
    return out


async def test_switch_commands_set_the_coils_and_are_logged(
    board: tuple[RelayBoardSim, FarEnd],
) -> None:
    sim, far = board
    far.write(RelayCommand(1, True).to_bytes() + RelayCommand(2, True).to_bytes())
    far.write(RelayCommand(1, False).to_bytes())
    await settle(lambda: len(sim.switches) == 3)
    assert sim.states == {1: False, 2: True}
    assert [(s.channel, s.on) for s in sim.switches] == [(1, True), (2, True), (1, False)]
    assert sim.switches[0].t <= sim.switches[-1].t


async def test_status_query_reports_each_channel(board: tuple[RelayBoardSim, FarEnd]) -> None:
    sim, far = board
    far.write(RelayCommand(2, True).to_bytes())
    await settle(lambda: sim.states[2])
    assert await status(far, 2) == [ChannelStatus(1, False), ChannelStatus(2, True)]


async def test_garbage_and_foreign_channels_are_ignored(
    board: tuple[RelayBoardSim, FarEnd],
) -> None:
    sim, far = board
    far.write(b"\x00\x13A0" + bytes.fromhex("A0 01 01 A3") + RelayCommand(5, True).to_bytes())
    far.write(RelayCommand(1, True).to_bytes())
    await settle(lambda: sim.states[1])
    assert sim.ignored == 1
    assert sim.decoder.stats.bad_checksum == 1
    assert [s.channel for s in sim.switches] == [1]


async def test_single_channel_board_stays_silent_and_a_replug_drops_the_relays(
    tmp_path: Path,
) -> None:
    async with SimPort(tmp_path, "relay1") as port:
        sim = RelayBoardSim(port, channels=1, answers_status=False)
        task = asyncio.create_task(sim.run())
        far = FarEnd(port.path)
        far.write(RelayCommand(1, True).to_bytes() + STATUS_QUERY)
        await settle(lambda: sim.states[1])
        with pytest.raises(TimeoutError):
            await far.read_some(timeout=0.2)
        far.close()
        port.reconnect()
        far = FarEnd(port.path)
        far.write(STATUS_QUERY)  # any traffic after the replug shows the powered-down board
        await settle(lambda: not sim.states[1])
        far.close()
        port.close()
        await asyncio.wait_for(task, 2)


async def test_the_documented_session_over_open_serial(tmp_path: Path) -> None:
    async with SimPort(tmp_path, "relay-doc") as port:
        sim = RelayBoardSim(port, channels=2)
        task = asyncio.create_task(sim.run())
        reader, writer = await open_serial(str(port.path), baudrate=BAUDRATE)
        writer.write(RelayCommand(channel=1, on=True).to_bytes())
        writer.write(STATUS_QUERY)
        decoder, states = StatusDecoder(), {}
        async with asyncio.timeout(2):
            while len(states) < 2:
                decoder.receive_data(await reader.read(64))
                while (line := decoder.next_frame()) is not NEED_DATA:
                    states[line.channel] = line.on
        assert states == {1: True, 2: False}
        writer.close()
        port.close()
        await asyncio.wait_for(task, 2)
