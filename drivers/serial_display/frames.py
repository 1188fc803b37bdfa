"""The serial-display frame (docs/protocols/serial-display.md, section 2).

One layout serves both directions; only the type codes differ. Framing is by start byte plus
length plus CRC: the start byte can occur inside a frame, so a receiver that finds a bad CRC drops
just the start byte and searches again (ThingMagic receivers do the same,
docs/drivers/thingmagic.md 1.2).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final, Self

from drivers.errors import EncodeError, FrameError
from drivers.serial_display.crc import crc16_ccitt_false

SOF: Final = 0xA5
HEADER_LEN: Final = 4  # SOF, LEN, SEQ, TYPE
CRC_LEN: Final = 2
MAX_PAYLOAD: Final = 250
MIN_FRAME: Final = HEADER_LEN + CRC_LEN


class FrameType(enum.IntEnum):
    PING = 0x01
    SHOW_TEXT = 0x02
    CLEAR = 0x03
    BRIGHTNESS = 0x04
    ACK = 0x80
    NAK = 0x81


class ErrorCode(enum.IntEnum):
    """The payload byte of a NAK."""

    UNKNOWN_TYPE = 0x01
    BAD_LENGTH = 0x02  # payload length impossible for the type
    BAD_TEXT = 0x03  # text is not valid UTF-8, or longer than the line holds
    BAD_LINE = 0x04  # no such line on this display
    BAD_VALUE = 0x05  # an argument out of range (brightness above 100)
    BUSY = 0x06  # try again later; the command was not executed
    FAULT = 0x07  # the display hardware failed; the command was not executed


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame; ``type`` is kept as a plain int so that unknown types can be NAKed.

    Wire layout::

        +------+-----+-----+------+-----------------+--------+--------+
        | SOF  | LEN | SEQ | TYPE | PAYLOAD         | CRC hi | CRC lo |
        | A5   | 0..250    |      | LEN bytes       |        |        |
        +------+-----+-----+------+-----------------+--------+--------+
                 \\______ CRC-16/CCITT-FALSE over LEN..PAYLOAD _/
    """

    seq: int
    type: int
    payload: bytes = b""

    def __post_init__(self) -> None:
        if not 0 <= self.seq <= 0xFF or not 0 <= self.type <= 0xFF:
            raise EncodeError(f"seq {self.seq} and type {self.type} must be bytes")
        if len(self.payload) > MAX_PAYLOAD:
            raise EncodeError(f"payload of {len(self.payload)} bytes exceeds {MAX_PAYLOAD}")

    def to_bytes(self) -> bytes:
        body = bytes([len(self.payload), self.seq, self.type]) + self.payload
        return bytes([SOF]) + body + crc16_ccitt_false(body).to_bytes(2, "big")

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        if len(data) < MIN_FRAME or data[0] != SOF:
            raise FrameError(f"not a display frame: {data.hex(' ')}")
        length = data[1]
        if length > MAX_PAYLOAD or len(data) != length + MIN_FRAME:
            raise FrameError(f"length byte {length} does not match {len(data)} bytes")
        body, crc = data[1:-CRC_LEN], int.from_bytes(data[-CRC_LEN:], "big")
        if crc16_ccitt_false(body) != crc:
            raise FrameError(f"CRC {crc:04X} != {crc16_ccitt_false(body):04X}")
        return cls(seq=data[2], type=data[3], payload=bytes(data[HEADER_LEN:-CRC_LEN]))
