"""The session for displays speaking our serial protocol (docs/protocols/serial-display.md).

One attempt is one ``DisplayLink`` exchange: the frame, then up to ``retries`` retransmissions
of it, unchanged, each after ``ack_timeout_s`` without an answer. An attempt that ends with no
answer, or with NAK BUSY, is retried as a new frame (new sequence number) while the deadline
allows. Any other NAK is final: BAD_LINE or BAD_TEXT will not change by asking again, and
FAULT also puts the output in the ``error`` state. A PING says hello after every (re)open and
again after a quiet spell, so a display that stopped answering is reported down.

Lines are numbered from 1 in commands and from 0 on the wire. A ``duration_s`` rides in the
frame, and the display blanks the line itself; only durations beyond the frame's 16-bit field
become a follow-up CLEAR from the gateway.

A display that loses power comes back blank. After every (re)open the session shows again what
each line should still be showing (text acknowledged earlier whose duration has not run out,
with the time that remains), as the relay session switches its channels back on.
"""

from __future__ import annotations

import asyncio
import math
from typing import Final, assert_never

from drivers.sentinel import NEED_DATA
from drivers.serial_display import (
    ALL_LINES,
    FOREVER,
    Clear,
    Command,
    Delivered,
    DisplayLink,
    ErrorCode,
    Failed,
    Frame,
    Ping,
    SetBrightness,
    ShowText,
)
from gateway.commands import (
    AnyCommand,
    DisplayBrightness,
    DisplayClear,
    DisplayShow,
    OutputError,
    OutputKind,
)
from gateway.config.outputs import SerialDisplayOutput
from gateway.health import DeviceState, StateListener
from gateway.outputs.base import (
    ACTION_DEADLINE_S,
    FollowUp,
    InvalidCommandError,
    OutputSession,
    Planned,
    RetryableError,
)
from gateway.outputs.port import SerialPort
from gateway.text import unsafe

MAX_FRAME_DURATION_S: Final = 0xFFFF  # SHOW_TEXT's duration_s is a u16


class DisplaySession(OutputSession[SerialPort, Command]):
    def __init__(
        self,
        config: SerialDisplayOutput,
        on_state: StateListener,
        *,
        deadline_s: float = ACTION_DEADLINE_S,
    ) -> None:
        super().__init__(config.id, on_state, deadline_s=deadline_s)
        self.config = config
        self._next_seq = 0
        self._link = self._new_link()
        self._ok_detail = f"{config.lines} lines, answers PING"
        # line -> (text, loop time it ends or None): what the display should show now.
        self._painted: dict[int, tuple[str, float | None]] = {}

    @property
    def kind(self) -> OutputKind:
        return "serial-display"

    @property
    def link(self) -> DisplayLink:
        """The current link, for its counters (``stale_replies``, ``decoder.stats``)."""
        return self._link

    def plan(self, command: AnyCommand) -> Planned[Command]:
        match command:
            case DisplayShow():
                return self._plan_show(command)
            case DisplayClear():
                every_line = frozenset(range(self.config.lines))
                return Planned(Clear(ALL_LINES), "clear the display", every_line)
            case DisplayBrightness(percent=percent):
                return Planned(SetBrightness(percent), f"set brightness {percent} %")
            case _:
                raise InvalidCommandError(_not_mine(self.id, command))

    def _plan_show(self, command: DisplayShow) -> Planned[Command]:
        lines, length = self.config.lines, self.config.line_length
        if command.line > lines:
            raise InvalidCommandError(
                f"{self.id}: no line {command.line} (the display has {lines})"
            )
        if len(command.text) > length:
            raise InvalidCommandError(
                f"{self.id}: {len(command.text)} characters do not fit a line of {length}"
            )
        where = unsafe(command.text)
        if where is not None:  # the model refuses it too; a command built unchecked does not
            raise InvalidCommandError(f"{self.id}: the character {where} cannot be shown")
        line = command.line - 1
        seconds = FOREVER if command.duration_s is None else math.ceil(command.duration_s)
        describe = f"show {command.text!r} on line {command.line}"
        if seconds <= MAX_FRAME_DURATION_S:
            return Planned(ShowText(line, command.text, seconds), describe, frozenset({line}))
        blank: FollowUp[Command] = FollowUp(
            line, seconds, Planned(Clear(line), f"clear line {command.line} (timed)")
        )
        return Planned(ShowText(line, command.text), describe, frozenset({line}), blank)

    def _new_link(self) -> DisplayLink:
        # The sequence continues across links: a display that kept power must not take a new
        # command for a retransmission of the last one it answered.
        return DisplayLink(
            ack_timeout_s=self.config.ack_timeout_s,
            max_retries=self.config.retries,
            first_seq=self._next_seq,
        )

    async def _open(self) -> SerialPort:
        self._link = self._new_link()
        return await SerialPort.open(self.config.port, self.config.baudrate, self._feed)

    def _feed(self, data: bytes) -> None:
        self._link.receive_data(data)

    def _close(self, conn: SerialPort) -> None:
        conn.close()

    async def _watch(self, conn: SerialPort) -> None:
        await conn.pump()

    async def _hello(self, conn: SerialPort) -> None:
        await self._check(conn)
        await self._repaint(conn)

    async def _repaint(self, conn: SerialPort) -> None:
        now = asyncio.get_running_loop().time()
        live = {
            n: (text, end) for n, (text, end) in self._painted.items() if end is None or end > now
        }
        self._painted = live
        for line, (text, end) in sorted(live.items()):
            seconds = FOREVER if end is None else max(1, math.ceil(end - now))
            await self._attempt(conn, ShowText(line, text, seconds))
        if live:
            self.log.info("showing again what %d line(s) should show", len(live))

    def _fell_due(self, planned: Planned[Command]) -> None:
        self._remember(planned.action, asyncio.get_running_loop().time())

    def _remember(self, command: Command, now: float) -> None:
        match command:
            case ShowText(line, text, seconds):
                self._painted[line] = (text, None if seconds == FOREVER else now + seconds)
            case Clear(line) if line == ALL_LINES:
                self._painted.clear()
            case Clear(line):
                self._painted.pop(line, None)
            case Ping() | SetBrightness():
                pass
            case _:
                assert_never(command)

    async def _check(self, conn: SerialPort) -> None:
        match await self._deliver(conn, Ping()):
            case Delivered():
                self.set_state(DeviceState.OK, self._ok_detail)
            case Failed(code=None):
                raise RetryableError(f"{self.id}: the display does not answer PING")
            case Failed(code=code):
                self.set_state(DeviceState.ERROR, f"PING refused: {_code_name(code)}")

    async def _attempt(self, conn: SerialPort, action: Command) -> None:
        event = await self._deliver(conn, action)
        match event:
            case Delivered():
                self._remember(action, asyncio.get_running_loop().time())
                self.set_state(DeviceState.OK, self._ok_detail)
            case Failed(code=None):
                tries = self.config.retries + 1
                raise RetryableError(f"no answer to {tries} transmissions of the frame")
            case Failed(code=ErrorCode.BUSY):
                raise RetryableError("the display answered NAK BUSY")
            case Failed(code=ErrorCode.FAULT):
                self.set_state(DeviceState.ERROR, "the display reports a hardware FAULT")
                raise OutputError(f"{self.id}: the display reports a hardware FAULT")
            case Failed(code=code):
                raise OutputError(f"{self.id}: the display refused it: NAK {_code_name(code)}")
            case _:
                assert_never(event)

    async def _deliver(self, conn: SerialPort, command: Command) -> Delivered | Failed:
        link, loop = self._link, asyncio.get_running_loop()
        try:
            wire = link.send(command, loop.time())
            self._next_seq = (Frame.from_bytes(wire).seq + 1) & 0xFF
            await conn.send(wire)
            while (event := link.next_event()) is NEED_DATA:
                assert link.deadline is not None  # in flight until an event comes out
                if not await conn.arrival(link.deadline):
                    await conn.send(link.retransmission(loop.time()))
            return event
        finally:
            if link.busy:  # cancelled mid-exchange (deadline, shutdown): start clean
                self._link = self._new_link()


def _code_name(code: ErrorCode | None) -> str:
    return "no answer" if code is None else code.name


def _not_mine(output_id: str, command: AnyCommand) -> str:
    return f"{output_id}: {type(command).__name__} is not a serial-display command"
