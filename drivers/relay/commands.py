"""LCUS relay switch commands (docs/drivers/relay.md 4.1).

The board listens at 9600 8N1 for ``A0 | channel | op | sum`` and never acknowledges. Channel
numbers are 1-based (01..08 on the 8-channel board); op 01 energises the coil, which closes the
normally-open contact. The sources disagree on whether that is "open" or "close" the switch, so
the API speaks of ``on`` (energised) only.

``CommandDecoder`` is the board's side of the wire, used by the simulator: it finds commands in a
byte stream, skipping garbage up to the next ``A0``. A 4-byte frame has no length field, so a bad
checksum costs one byte and the search restarts inside the rejected frame (its own bytes may hold
the real start).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Self

from drivers.buffer import BufferedDecoder
from drivers.errors import EncodeError, FrameError
from drivers.sentinel import NEED_DATA, NeedData

BAUDRATE: Final = 9600
LCUS_START: Final = 0xA0
LCUS_FRAME_LEN: Final = 4
LCUS_OP_OFF: Final = 0x00
LCUS_OP_ON: Final = 0x01
LCUS_MAX_CHANNEL: Final = 8
# Multi-channel boards answer FF with their channel states; single-channel ones stay silent.
STATUS_QUERY: Final = b"\xff"

_START: Final = bytes([LCUS_START])


def check_channel(channel: int) -> None:
    """A command and a status line name a channel the same way: 1-based, at most eight."""
    if not 1 <= channel <= LCUS_MAX_CHANNEL:
        raise EncodeError(f"relay channel {channel} outside 1..{LCUS_MAX_CHANNEL}")


def _checksum(channel: int, op: int) -> int:
    return (LCUS_START + channel + op) & 0xFF


@dataclass(frozen=True, slots=True)
class RelayCommand:
    """Switch one relay.

    Wire layout (4 bytes)::

        +------+---------+------+-----+
        |  A0  | channel |  op  | sum |     sum = (A0 + channel + op) & 0xFF
        +------+---------+------+-----+
                 01..08    00 off / 01 on
    """

    channel: int
    on: bool

    def __post_init__(self) -> None:
        check_channel(self.channel)

    def to_bytes(self) -> bytes:
        op = LCUS_OP_ON if self.on else LCUS_OP_OFF
        return bytes([LCUS_START, self.channel, op, _checksum(self.channel, op)])

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        if len(data) != LCUS_FRAME_LEN or data[0] != LCUS_START:
            raise FrameError(f"not an LCUS command: {data.hex(' ')}")
        _, channel, op, checksum = data
        if checksum != _checksum(channel, op):
            raise FrameError(f"LCUS checksum {checksum:02X} != {_checksum(channel, op):02X}")
        if op not in (LCUS_OP_OFF, LCUS_OP_ON) or not 1 <= channel <= LCUS_MAX_CHANNEL:
            raise FrameError(f"LCUS command out of range: {data.hex(' ')}")
        return cls(channel, op == LCUS_OP_ON)


class CommandDecoder(BufferedDecoder):
    """Board side: bytes in any chunking -> ``RelayCommand`` or ``STATUS_QUERY`` out."""

    def __init__(self, max_size: int = 1024) -> None:
        super().__init__(max_size)

    def next_frame(self) -> RelayCommand | bytes | NeedData:
        """The next command; a status query comes out as the bytes ``STATUS_QUERY``."""
        buf = self._buffer
        while len(buf):
            first = buf.byte_at(0)
            if first == STATUS_QUERY[0]:
                buf.take(1)
                buf.stats.frames += 1
                return STATUS_QUERY
            if first != LCUS_START:
                self._skip_to_start()
                continue
            if len(buf) < LCUS_FRAME_LEN:
                return NEED_DATA
            command = self._maybe_command(buf.peek(LCUS_FRAME_LEN))
            if command is not None:
                buf.take(LCUS_FRAME_LEN)
                buf.stats.frames += 1
                return command
            buf.discard(1)
        return NEED_DATA

    def _skip_to_start(self) -> None:
        buf = self._buffer
        data = buf.peek(len(buf))
        at = next((i for i, b in enumerate(data) if b in (LCUS_START, STATUS_QUERY[0])), len(data))
        buf.discard(at)

    def _maybe_command(self, frame: bytes) -> RelayCommand | None:
        _, channel, op, checksum = frame
        if checksum != _checksum(channel, op):
            self._buffer.stats.bad_checksum += 1
            return None
        try:
            return RelayCommand.from_bytes(frame)
        except FrameError:
            self._buffer.stats.malformed += 1
            return None
