"""Replies to the LCUS status query (``FF``) on multi-channel boards.

The reply format is UNCONFIRMED and device-dependent (docs/drivers/relay.md 4.1). The one
reported shape is ASCII, one line per channel, e.g. ``CH1:OFF \\r\\n`` (AscomSwitchDriver README),
and that is what this decoder understands. Bytes before a ``CH`` are skipped (the CRLF between lines
among them). Lines are short, so a ``CH`` without a newline within ``MAX_LINE`` bytes is garbage,
and so is a line that does not parse: either way one byte is dropped and the search for ``CH`` goes
on. Single-channel boards answer nothing, so the caller must treat silence as "status unknown".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Self

from drivers.buffer import BufferedDecoder
from drivers.errors import FrameError
from drivers.relay.commands import check_channel
from drivers.sentinel import NEED_DATA, NeedData

MAX_LINE: Final = 32
_LINE_START: Final = b"CH"
_LINE_RE: Final = re.compile(rb"CH([1-8]):(ON|OFF)")


@dataclass(frozen=True, slots=True)
class ChannelStatus:
    """One line of a status reply.

    Wire layout (ASCII, trailing space as reported)::

        C H <n> : O N|O F F <space> \\r \\n        n = 1..8
    """

    channel: int
    on: bool

    def __post_init__(self) -> None:
        check_channel(self.channel)

    def to_bytes(self) -> bytes:
        return f"CH{self.channel}:{'ON' if self.on else 'OFF'} \r\n".encode("ascii")

    @classmethod
    def from_bytes(cls, line: bytes) -> Self:
        match = _LINE_RE.fullmatch(line.strip())
        if match is None:
            raise FrameError(f"not a relay status line: {line!r}")
        return cls(int(match[1]), match[2] == b"ON")


class StatusDecoder(BufferedDecoder):
    """Gateway side: status reply bytes in any chunking -> ``ChannelStatus`` out."""

    def __init__(self, max_size: int = 1024) -> None:
        super().__init__(max_size)

    def next_frame(self) -> ChannelStatus | NeedData:
        buf = self._buffer
        while buf.discard_until(_LINE_START, start=0):
            end = buf.find(b"\n")
            if end > MAX_LINE or (end < 0 and len(buf) > MAX_LINE):
                buf.stats.bad_length += 1
                buf.discard(1)  # a "CH" inside the overlong run may start the real line
                continue
            if end < 0:
                return NEED_DATA
            try:
                status = ChannelStatus.from_bytes(buf.peek(end + 1))
            except FrameError:
                buf.stats.malformed += 1
                buf.discard(1)
                continue
            buf.take(end + 1)
            buf.stats.frames += 1
            return status
        return NEED_DATA
