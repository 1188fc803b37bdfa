"""The display simulator over a real pty, driven by the gateway-side DisplayLink."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sim_far_end import FarEnd

from drivers.sentinel import NEED_DATA
from drivers.serial_display import (
    Clear,
    Command,
    Delivered,
    DisplayLink,
    ErrorCode,
    Failed,
    Ping,
    SetBrightness,
    ShowText,
)
from drivers.transport import open_serial
from firmware_sim.display import DisplaySim
from firmware_sim.pty import Chunking, Delivery, SimPort

pytestmark = pytest.mark.timeout(10)


@pytest.fixture
async def display(tmp_path: Path) -> AsyncIterator[tuple[DisplaySim, FarEnd]]:
    async with SimPort(tmp_path, "display", seed=3) as port:
        sim = DisplaySim(port, lines=2, line_bytes=32)
        task = asyncio.create_task(sim.run())
        far = FarEnd(port.path)
        try:
            yield sim, far
        finally:
            far.close()
            port.close()
            await asyncio.wait_for(task, 2)


async def deliver(link: DisplayLink, far: FarEnd, command: Command) -> Delivered | Failed:
    """The session loop of docs/drivers/serial-display.md, with FarEnd standing in for the port."""
    loop = asyncio.get_running_loop()
    far.write(link.send(command, loop.time()))
    while (event := link.next_event()) is NEED_DATA:
        assert link.deadline is not None
        try:
            link.receive_data(await far.read_some(max(0.0, link.deadline - loop.time())))
        except TimeoutError:
            if again := link.retransmission(loop.time()):
                far.write(again)
    return event


async def test_show_clear_and_brightness_are_acked_and_kept(
    display: tuple[DisplaySim, FarEnd],
) -> None:
    sim, far = display
    link = DisplayLink()
    commands = (ShowText(0, "Käse 2,99 €"), ShowText(1, "Brot"), Clear(0), SetBrightness(30))
    for seq, command in enumerate(commands):
        assert await deliver(link, far, command) == Delivered(seq, command)
    assert sim.visible() == {1: "Brot"}
    assert sim.brightness == 30
    assert [seq for seq, _ in sim.executed] == [0, 1, 2, 3]


async def test_lost_ack_is_retransmitted_and_executed_once(
    display: tuple[DisplaySim, FarEnd],
) -> None:
    sim, far = display
    sim.faults.drop_replies = 1
    link = DisplayLink(ack_timeout_s=0.05)
    assert await deliver(link, far, ShowText(0, "once")) == Delivered(0, ShowText(0, "once"))
    assert sim.executed == [(0, ShowText(0, "once"))]


async def test_corrupted_ack_is_counted_and_recovered(display: tuple[DisplaySim, FarEnd]) -> None:
    sim, far = display
    sim.faults.corrupt_replies = 2
    link = DisplayLink(ack_timeout_s=0.05)
    assert isinstance(await deliver(link, far, Ping()), Delivered)
    assert link.decoder.stats.bad_checksum == 2


async def test_refusals_come_back_as_failures_with_their_code(
    display: tuple[DisplaySim, FarEnd],
) -> None:
    sim, far = display
    link = DisplayLink()
    sim.faults.nak_next = [ErrorCode.BUSY]
    assert await deliver(link, far, Ping()) == Failed(0, Ping(), ErrorCode.BUSY)
    assert await deliver(link, far, ShowText(5, "x")) == Failed(
        1, ShowText(5, "x"), ErrorCode.BAD_LINE
    )
    assert await deliver(link, far, ShowText(0, "x" * 40)) == Failed(
        2, ShowText(0, "x" * 40), ErrorCode.BAD_TEXT
    )
    assert sim.executed == []


async def test_a_silent_display_fails_after_the_retries(display: tuple[DisplaySim, FarEnd]) -> None:
    sim, far = display
    sim.faults.silent = True
    link = DisplayLink(ack_timeout_s=0.03, max_retries=2)
    assert await deliver(link, far, Ping()) == Failed(0, Ping(), None)
    assert sim.decoder.stats.frames == 3  # the first attempt and two retransmissions


async def test_text_with_a_duration_disappears(display: tuple[DisplaySim, FarEnd]) -> None:
    sim, far = display
    link = DisplayLink()
    await deliver(link, far, ShowText(0, "flash", duration_s=1))
    assert sim.visible() == {0: "flash"}
    await asyncio.sleep(1.05)
    assert sim.visible() == {}


async def test_replies_arriving_byte_by_byte_are_reassembled(tmp_path: Path) -> None:
    async with SimPort(tmp_path, "display-slow", seed=1) as port:
        port.delivery = Delivery(Chunking.BYTEWISE, gap_s=0.002)
        sim = DisplaySim(port)
        task = asyncio.create_task(sim.run())
        far = FarEnd(port.path)
        link = DisplayLink()
        assert isinstance(await deliver(link, far, SetBrightness(80)), Delivered)
        assert len(far.reads) > 1
        far.close()
        port.close()
        await asyncio.wait_for(task, 2)


async def test_the_documented_session_loop_over_open_serial(tmp_path: Path) -> None:
    async with SimPort(tmp_path, "display-doc") as port:
        sim = DisplaySim(port)
        task = asyncio.create_task(sim.run())
        reader, writer = await open_serial(str(port.path), baudrate=115200)
        link = DisplayLink(ack_timeout_s=0.05)
        loop = asyncio.get_running_loop()

        async def deliver(command: Command) -> Delivered | Failed:
            writer.write(link.send(command, loop.time()))
            while (event := link.next_event()) is NEED_DATA:
                assert link.deadline is not None
                try:
                    async with asyncio.timeout_at(link.deadline):
                        link.receive_data(await reader.read(256))
                except TimeoutError:
                    writer.write(link.retransmission(loop.time()))
            return event

        sim.faults.drop_replies = 1
        assert await deliver(ShowText(0, "Käse 2,99 €", 30)) == Delivered(
            0, ShowText(0, "Käse 2,99 €", 30)
        )
        sim.faults.silent = True
        assert await deliver(Ping()) == Failed(1, Ping(), None)
        assert sim.visible() == {0: "Käse 2,99 €"}
        writer.close()
        port.close()
        await asyncio.wait_for(task, 2)
