"""A simulated serial display speaking our protocol (docs/protocols/serial-display.md) on a pty.

Built from the driver's ``CommandDecoder`` and ``encode_reply``. It keeps what each line shows
(with its expiry on the loop clock), the brightness, and a log of every command executed, and it
follows the protocol's duplicate rule: a frame identical to the last one answered (same sequence
number, same content) is answered with the stored reply and not executed again.

Fault knobs, each counting down per reply: ``drop_replies`` (the ACK is lost on the wire),
``corrupt_replies`` (the reply's CRC is broken), ``nak_next`` (refuse with a code, e.g. BUSY),
and ``silent`` (a display that reads but never answers).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import assert_never

from drivers.serial_display import (
    ALL_LINES,
    FOREVER,
    Ack,
    Clear,
    Command,
    CommandDecoder,
    ErrorCode,
    Nak,
    Ping,
    Received,
    Refused,
    Reply,
    SetBrightness,
    ShowText,
    encode_reply,
)
from firmware_sim.pty import SimPort, incoming_frames


@dataclass(slots=True)
class Faults:
    drop_replies: int = 0
    corrupt_replies: int = 0
    nak_next: list[ErrorCode] = field(default_factory=list)
    silent: bool = False


@dataclass(frozen=True, slots=True)
class Shown:
    text: str
    until: float | None  # loop time; None = until replaced


class DisplaySim:
    def __init__(self, port: SimPort, *, lines: int = 2, line_bytes: int = 64) -> None:
        self.port = port
        self.line_count = lines
        self.line_bytes = line_bytes
        self.decoder = CommandDecoder()
        self.faults = Faults()
        self.lines: dict[int, Shown] = {}
        self.brightness = 100
        self.executed: list[tuple[int, Command]] = []  # (seq, command), in order
        self._last: tuple[Received, Reply] | None = None

    def power_cycle(self) -> None:
        """Lose power and come back: blank lines, default brightness, no memory of frames."""
        self.lines.clear()
        self.brightness = 100
        self._last = None

    def visible(self) -> dict[int, str]:
        """What a person would read now: lines whose duration has not run out."""
        now = asyncio.get_running_loop().time()
        return {n: s.text for n, s in self.lines.items() if s.until is None or now < s.until}

    async def run(self) -> None:
        # Annotated: mypy would join the union the decoder yields into object.
        frames: AsyncIterator[Received | Refused] = incoming_frames(self.port, lambda: self.decoder)
        async for frame in frames:
            await self._reply(self._answer(frame))

    def _answer(self, frame: Received | Refused) -> Reply:
        if isinstance(frame, Refused):
            return Nak(frame.seq, frame.code)
        if self._last is not None and self._last[0] == frame:
            return self._last[1]  # a retransmission: answer again, do not execute twice
        if self.faults.nak_next:
            reply: Reply = Nak(frame.seq, self.faults.nak_next.pop(0))
        else:
            code = self._execute(frame.command)
            reply = Ack(frame.seq) if code is None else Nak(frame.seq, code)
            if code is None:
                self.executed.append((frame.seq, frame.command))
        self._last = (frame, reply)
        return reply

    def _execute(self, command: Command) -> ErrorCode | None:
        match command:
            case Ping():
                return None
            case ShowText(line, text, duration_s):
                return self._show(line, text, duration_s)
            case Clear(line):
                return self._clear(line)
            case SetBrightness(percent):
                self.brightness = percent
                return None
            case _:
                assert_never(command)

    def _show(self, line: int, text: str, duration_s: int) -> ErrorCode | None:
        if line >= self.line_count:
            return ErrorCode.BAD_LINE
        if len(text.encode("utf-8")) > self.line_bytes:
            return ErrorCode.BAD_TEXT
        now = asyncio.get_running_loop().time()
        self.lines[line] = Shown(text, None if duration_s == FOREVER else now + duration_s)
        return None

    def _clear(self, line: int) -> ErrorCode | None:
        if line == ALL_LINES:
            self.lines.clear()
        elif line >= self.line_count:
            return ErrorCode.BAD_LINE
        else:
            self.lines.pop(line, None)
        return None

    async def _reply(self, reply: Reply) -> None:
        faults = self.faults
        if faults.silent:
            return
        if faults.drop_replies:
            faults.drop_replies -= 1
            return
        wire = bytearray(encode_reply(reply).to_bytes())
        if faults.corrupt_replies:
            faults.corrupt_replies -= 1
            wire[-1] ^= 0xFF
        await self.port.write(bytes(wire))
