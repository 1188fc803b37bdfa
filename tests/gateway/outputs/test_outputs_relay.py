"""The relay output session against the simulated LCUS board, on real ptys."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from firmware_sim.pty import Chunking, SimPort
from firmware_sim.relay import RelayBoardSim
from gateway.commands import DisplayClear, OutputError, RelaySwitch
from gateway.config.outputs import RelayOutput
from gateway.health import DeviceState
from gateway.outputs import InvalidCommandError, Outputs, RelaySession
from tests.waiting import background, until

pytestmark = pytest.mark.timeout(20)

States = list[tuple[DeviceState, str | None]]


def switch(channel: int, on: bool, duration_s: float | None = None) -> RelaySwitch:
    return RelaySwitch(
        command_id="c-1", action="switch", channel=channel, on=on, duration_s=duration_s
    )


def config(port: SimPort, *, channels: int = 2, answers_status: bool = True) -> RelayOutput:
    return RelayOutput(
        id="lock",
        driver="relay",
        port=str(port.path),
        channels=channels,
        answers_status=answers_status,
    )


@contextlib.asynccontextmanager
async def board(tmp_path: Path, **kwargs: Any) -> AsyncIterator[tuple[SimPort, RelayBoardSim]]:
    async with SimPort(tmp_path, "relay") as port:
        sim = RelayBoardSim(port, **kwargs)
        async with background(sim.run()):
            yield port, sim


async def test_switches_are_executed_and_read_back(tmp_path: Path) -> None:
    states: States = []
    async with board(tmp_path, channels=2) as (port, sim):
        port.delivery.chunking = Chunking.BYTEWISE  # status lines arrive a byte at a time
        session = RelaySession(config(port), lambda _id, s, d: states.append((s, d)))
        async with background(session.run()):
            await session.execute(switch(1, True))
            await session.execute(switch(2, True))
            await session.execute(switch(1, False))
    assert sim.states == {1: False, 2: True}
    assert [(s.channel, s.on) for s in sim.switches] == [(1, True), (2, True), (1, False)]
    assert sim.queries == 4  # hello, then one read-back per switch
    assert states == [(DeviceState.OK, "2 channels, status read back")]


async def test_duration_switches_back_and_a_newer_command_cancels_it(tmp_path: Path) -> None:
    async with board(tmp_path, channels=2) as (port, sim):
        session = RelaySession(config(port), lambda *_: None)
        async with background(session.run()):
            await session.execute(switch(1, True, duration_s=0.2))
            await session.execute(switch(2, True, duration_s=0.2))
            await session.execute(switch(2, True))  # held on: the switch-back is cancelled
            await until(lambda: not sim.states[1])
            await asyncio.sleep(0.4)
    on_times = [s.t for s in sim.switches if s.channel == 1 and s.on]
    off_times = [s.t for s in sim.switches if s.channel == 1 and not s.on]
    assert len(on_times) == len(off_times) == 1
    assert 0.2 <= off_times[0] - on_times[0] < 0.6
    assert sim.states == {1: False, 2: True}


async def test_garbage_before_the_status_is_skipped(tmp_path: Path) -> None:
    async with board(tmp_path, channels=2) as (port, sim):
        sim.status_noise = bytes.fromhex("A0 FF 13 43 48 31 3A") + b"CH9:ON \r\n"
        session = RelaySession(config(port), lambda *_: None)
        async with background(session.run()):
            await session.execute(switch(2, True))
    assert sim.states == {1: False, 2: True}


async def test_a_stuck_channel_is_retried_then_reported(tmp_path: Path) -> None:
    async with board(tmp_path, channels=2) as (port, sim):
        sim.stuck = {2}
        session = RelaySession(config(port), lambda *_: None, deadline_s=1.0)
        async with background(session.run()):
            with pytest.raises(OutputError, match=r"channel 2 reads off after the switch"):
                await session.execute(switch(2, True))
            await session.execute(switch(1, True))  # the queue goes on after a failure
    commands_for_2 = sim.ignored
    assert commands_for_2 >= 3  # retried, not given up after one try
    assert sim.states == {1: True, 2: False}
    assert (session.executed, session.failed) == (1, 1)


async def test_a_silent_board_configured_to_answer_is_down(tmp_path: Path) -> None:
    async with board(tmp_path, channels=1, answers_status=False) as (port, sim):
        session = RelaySession(config(port, channels=1), lambda *_: None)
        with pytest.raises(OutputError, match=r"0 of 1 channels answered"):
            await session.run()
    assert sim.switches == []


async def test_a_switch_only_board_is_trusted(tmp_path: Path) -> None:
    async with board(tmp_path, channels=1, answers_status=False) as (port, sim):
        session = RelaySession(config(port, channels=1, answers_status=False), lambda *_: None)
        async with background(session.run()):
            await session.execute(switch(1, True))  # returns once written: no ack to wait for
            await until(lambda: sim.states[1])
    assert session.detail == "1 channels, switch-only"


async def test_malformed_commands_never_reach_the_wire(tmp_path: Path) -> None:
    async with board(tmp_path, channels=2) as (port, sim):
        session = RelaySession(config(port), lambda *_: None)
        async with background(session.run()):
            await until(lambda: session.state == DeviceState.OK)
            with pytest.raises(InvalidCommandError, match="no channel 3"):
                await session.execute(switch(3, True))
            with pytest.raises(InvalidCommandError, match="DisplayClear is not a relay command"):
                await session.execute(DisplayClear(command_id="c-2", action="clear"))
            await asyncio.sleep(0.05)
    assert (sim.switches, sim.ignored, sim.queries) == ([], 0, 1)  # only the hello's query


async def test_an_unplug_is_survived_and_the_relays_are_restored(tmp_path: Path) -> None:
    states: States = []
    async with board(tmp_path, channels=2) as (port, sim):
        outputs = Outputs([config(port)], lambda _id, s, d: states.append((s, d)))
        session = outputs["lock"]
        async with background(outputs.run()):
            await session.execute(switch(2, True))
            port.hang_up()
            await until(lambda: session.state == DeviceState.DOWN)
            pending = asyncio.create_task(session.execute(switch(1, True)))
            port.reconnect()  # the board powers up with every relay off
            await pending  # queued while down, carried out after the reconnect
            assert sim.states == {1: True, 2: True}
    assert [s for s, _ in states] == [DeviceState.OK, DeviceState.DOWN, DeviceState.OK]
    assert "relay: read failed" in (states[1][1] or "")
    assert states[2][1] == "2 channels, status read back, 1 switched on again"


async def test_a_pulse_that_ended_during_an_unplug_is_not_replayed(tmp_path: Path) -> None:
    async with board(tmp_path, channels=2) as (port, sim):
        outputs = Outputs([config(port)], lambda *_: None)
        session = outputs["lock"]
        async with background(outputs.run()):
            await session.execute(switch(1, True, duration_s=0.3))
            port.hang_up()
            await until(lambda: session.state == DeviceState.DOWN)
            await asyncio.sleep(0.4)  # the pulse ends while the board is away
            unplugged = len(sim.switches)
            port.reconnect()
            await until(lambda: session.state == DeviceState.OK)
            await until(lambda: len(sim.switches) > unplugged)  # the switch-back, late
            await asyncio.sleep(0.1)
    assert [(s.channel, s.on) for s in sim.switches[unplugged:]] == [(1, False)]
    assert sim.states == {1: False, 2: False}
