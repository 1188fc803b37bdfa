"""The serial-display output session against the simulated display, on real ptys."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from drivers.serial_display import Clear, ErrorCode, SetBrightness, ShowText
from firmware_sim.display import DisplaySim
from firmware_sim.pty import Chunking, SimPort
from gateway.commands import (
    DisplayBrightness,
    DisplayClear,
    DisplayShow,
    EpaperShow,
    OutputError,
)
from gateway.config.outputs import SerialDisplayOutput
from gateway.health import DeviceState
from gateway.outputs import DisplaySession, InvalidCommandError, Outputs
from tests.waiting import background, until

pytestmark = pytest.mark.timeout(20)

States = list[tuple[DeviceState, str | None]]
ACK_TIMEOUT_S = 0.05


def show(line: int, text: str, duration_s: float | None = None) -> DisplayShow:
    return DisplayShow(command_id="c-1", action="show", line=line, text=text, duration_s=duration_s)


def config(port: SimPort, *, retries: int = 2) -> SerialDisplayOutput:
    return SerialDisplayOutput(
        id="shelf",
        driver="serial-display",
        port=str(port.path),
        lines=2,
        line_length=16,
        ack_timeout_s=ACK_TIMEOUT_S,
        retries=retries,
    )


@contextlib.asynccontextmanager
async def display(tmp_path: Path) -> AsyncIterator[tuple[SimPort, DisplaySim]]:
    async with SimPort(tmp_path, "display") as port:
        sim = DisplaySim(port, lines=2, line_bytes=64)
        async with background(sim.run()):
            yield port, sim


async def test_text_clear_and_brightness_are_executed(tmp_path: Path) -> None:
    states: States = []
    async with display(tmp_path) as (port, sim):
        port.delivery.chunking = Chunking.BYTEWISE
        session = DisplaySession(config(port), lambda _id, s, d: states.append((s, d)))
        async with background(session.run()):
            await session.execute(show(1, "Käse 2,99 €"))
            await session.execute(show(2, "Brot"))
            assert sim.visible() == {0: "Käse 2,99 €", 1: "Brot"}
            await session.execute(
                DisplayBrightness(command_id="b", action="brightness", percent=40)
            )
            await session.execute(DisplayClear(command_id="c", action="clear"))
            assert sim.visible() == {}
    commands = [command for _seq, command in sim.executed[1:]]  # after the hello's PING
    assert commands == [
        ShowText(0, "Käse 2,99 €"),
        ShowText(1, "Brot"),
        SetBrightness(40),
        Clear(),
    ]
    assert sim.brightness == 40
    assert states == [(DeviceState.OK, "2 lines, answers PING")]


async def test_duration_is_sent_for_the_display_to_blank_the_line(tmp_path: Path) -> None:
    async with display(tmp_path) as (port, sim):
        session = DisplaySession(config(port), lambda *_: None)
        async with background(session.run()):
            await session.execute(show(1, "Angebot", duration_s=0.3))
            assert sim.visible() == {0: "Angebot"}
            await until(lambda: sim.visible() == {})
    assert sim.executed[-1][1] == ShowText(0, "Angebot", 1)  # whole seconds, rounded up


async def test_lost_and_corrupted_acks_are_retransmitted_without_executing_twice(
    tmp_path: Path,
) -> None:
    async with display(tmp_path) as (port, sim):
        session = DisplaySession(config(port), lambda *_: None)
        async with background(session.run()):
            await until(lambda: session.state == DeviceState.OK)
            sim.faults.drop_replies = 1
            sim.faults.corrupt_replies = 1
            await session.execute(show(1, "eins"))
    assert [c for _seq, c in sim.executed[1:]] == [ShowText(0, "eins")]
    assert session.link.decoder.stats.bad_checksum == 1


async def test_line_noise_before_the_answer_is_skipped(tmp_path: Path) -> None:
    async with display(tmp_path) as (port, sim):
        session = DisplaySession(config(port), lambda *_: None)
        async with background(session.run()):
            await until(lambda: session.state == DeviceState.OK)
            # Noise with false starts: A5 FF (length too big), then A5 03 (a plausible length
            # that swallows the start of the real ACK until its CRC fails).
            await port.write(bytes.fromhex("00 A5 FF 13 A5 03 01"))
            await session.execute(show(1, "trotzdem"))
    assert sim.visible() == {0: "trotzdem"}
    stats = session.link.decoder.stats
    assert stats.bad_length >= 1
    assert stats.bad_checksum >= 1


async def test_busy_is_retried_and_a_refusal_is_reported(tmp_path: Path) -> None:
    async with display(tmp_path) as (port, sim):
        session = DisplaySession(config(port), lambda *_: None)
        async with background(session.run()):
            await until(lambda: session.state == DeviceState.OK)
            sim.faults.nak_next = [ErrorCode.BUSY, ErrorCode.BUSY]
            await session.execute(show(1, "nach BUSY"))
            sim.faults.nak_next = [ErrorCode.BAD_TEXT]
            with pytest.raises(OutputError, match="refused it: NAK BAD_TEXT"):
                await session.execute(show(2, "abgelehnt"))
    assert sim.visible() == {0: "nach BUSY"}
    assert (session.executed, session.failed) == (1, 1)


async def test_a_display_that_stops_answering_fails_the_action_by_its_deadline(
    tmp_path: Path,
) -> None:
    async with display(tmp_path) as (port, sim):
        session = DisplaySession(config(port), lambda *_: None, deadline_s=0.6)
        async with background(session.run()):
            await until(lambda: session.state == DeviceState.OK)
            sim.faults.silent = True
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(OutputError, match=r"no answer to 3 transmissions") as info:
                await session.execute(show(1, "niemand"))
            elapsed = loop.time() - started
            sent = sim.decoder.stats.frames
            await asyncio.sleep(4 * ACK_TIMEOUT_S)
            assert sim.decoder.stats.frames == sent  # nothing goes out after the deadline
    assert 0.6 <= elapsed < 1.0
    assert "attempts" in str(info.value)
    assert sent >= 1 + 2 * 3  # the PING, then at least two attempts of three transmissions


async def test_a_silent_display_is_not_reported_ok(tmp_path: Path) -> None:
    async with display(tmp_path) as (port, sim):
        sim.faults.silent = True
        session = DisplaySession(config(port), lambda *_: None)
        with pytest.raises(OutputError, match="does not answer PING"):
            await session.run()
    assert session.state == DeviceState.STARTING


async def test_malformed_commands_never_reach_the_wire(tmp_path: Path) -> None:
    async with display(tmp_path) as (port, sim):
        session = DisplaySession(config(port), lambda *_: None)
        async with background(session.run()):
            await until(lambda: session.state == DeviceState.OK)
            with pytest.raises(InvalidCommandError, match="no line 3"):
                await session.execute(show(3, "x"))
            with pytest.raises(InvalidCommandError, match="do not fit a line of 16"):
                await session.execute(show(1, "x" * 17))
            label = EpaperShow(command_id="e", action="show", mac="0000021F8A3C", lines=["x"])
            with pytest.raises(
                InvalidCommandError, match="EpaperShow is not a serial-display command"
            ):
                await session.execute(label)
            await asyncio.sleep(0.05)
    assert sim.decoder.stats.frames == 1  # the hello's PING only


async def test_an_unplug_is_survived(tmp_path: Path) -> None:
    states: States = []
    async with display(tmp_path) as (port, sim):
        outputs = Outputs([config(port)], lambda _id, s, d: states.append((s, d)))
        session = outputs["shelf"]
        async with background(outputs.run()):
            await session.execute(show(1, "vorher"))
            port.hang_up()
            await until(lambda: session.state == DeviceState.DOWN)
            port.reconnect()
            await until(lambda: session.state == DeviceState.OK)
            await session.execute(show(2, "nachher"))
    assert sim.visible() == {0: "vorher", 1: "nachher"}
    assert [s for s, _ in states] == [DeviceState.OK, DeviceState.DOWN, DeviceState.OK]


async def test_a_display_that_lost_power_is_shown_again_what_it_should_show(
    tmp_path: Path,
) -> None:
    async with display(tmp_path) as (port, sim):
        outputs = Outputs([config(port)], lambda _id, _s, _d: None)
        session = outputs["shelf"]
        async with background(outputs.run()):
            await session.execute(show(1, "Brot"))
            await session.execute(show(2, "Angebot", duration_s=600))
            port.hang_up()
            sim.power_cycle()
            await until(lambda: session.state == DeviceState.DOWN)
            before = len(sim.executed)
            port.reconnect()
            await until(lambda: sim.visible() == {0: "Brot", 1: "Angebot"})
            assert session.state == DeviceState.OK
    repainted = [c for _, c in sim.executed[before:] if isinstance(c, ShowText)]
    assert [(c.line, c.text) for c in repainted] == [(0, "Brot"), (1, "Angebot")]
    assert repainted[0].duration_s == 0  # until replaced, as first shown
    assert 590 < repainted[1].duration_s <= 600  # only what remains of its 600 s


async def test_text_whose_time_ran_out_or_was_cleared_is_not_shown_again(tmp_path: Path) -> None:
    async with display(tmp_path) as (port, sim):
        outputs = Outputs([config(port)], lambda _id, _s, _d: None)
        session = outputs["shelf"]
        async with background(outputs.run()):
            await session.execute(show(1, "kurz", duration_s=1))
            await session.execute(show(2, "weg"))
            await session.execute(DisplayClear(command_id="c-2", action="clear"))
            await until(lambda: sim.visible() == {})  # the display blanked "kurz" itself
            port.hang_up()
            sim.power_cycle()
            await until(lambda: session.state == DeviceState.DOWN)
            before = len(sim.executed)
            port.reconnect()
            await until(lambda: session.state == DeviceState.OK)
            await session.execute(show(1, "neu"))
    assert [c for _, c in sim.executed[before:] if isinstance(c, ShowText)] == [ShowText(0, "neu")]


async def test_control_and_bidi_text_built_unchecked_never_reaches_the_wire(
    tmp_path: Path,
) -> None:
    # The command model refuses such text; a command built without validation (model_construct)
    # meets the session's own check.
    async with display(tmp_path) as (port, sim):
        session = DisplaySession(config(port), lambda *_: None)
        async with background(session.run()):
            await until(lambda: session.state == DeviceState.OK)
            for text in ["\x1b[2J", "price \u202e99.9"]:
                unchecked = DisplayShow.model_construct(
                    command_id="c-u", action="show", line=1, text=text, duration_s=None
                )
                with pytest.raises(InvalidCommandError, match="cannot be shown"):
                    await session.execute(unchecked)
    assert sim.decoder.stats.frames == 1  # the hello's PING only
