"""ThingMagic Mercury serial frames, both directions (docs/drivers/thingmagic.md 1.2).

A frame starts with 0xFF, carries a one-byte LEN that counts the DATA bytes only, and ends with
``tm_crc`` over everything between the header and the CRC, sent high byte first. Responses carry a
16-bit status between the opcode and the data; requests do not. Multi-byte integers inside DATA
are big-endian.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from drivers.errors import EncodeError, FrameError
from drivers.thingmagic.crc import tm_crc

SOF: Final = 0xFF
# mercuryapi's receiver rejects a larger LEN: TMR_SR_MAX_PACKET_SIZE is 256 bytes per frame.
MAX_DATA_LEN: Final = 0xF8
REQUEST_OVERHEAD: Final = 5  # FF LEN OP .. CRC CRC
RESPONSE_OVERHEAD: Final = 7  # FF LEN OP ST ST .. CRC CRC


def crc_bytes(body: bytes) -> bytes:
    return tm_crc(body).to_bytes(2, "big")


def crc_matches(raw: bytes) -> bool:
    """Whether the last two bytes of a whole frame are the CRC of everything after the 0xFF."""
    return tm_crc(raw[1:-2]) == int.from_bytes(raw[-2:], "big")


def check_frame(raw: bytes, overhead: int) -> None:
    """Raise FrameError unless ``raw`` is exactly one frame with a good CRC."""
    if len(raw) < overhead or raw[0] != SOF:
        raise FrameError(f"not a frame: {raw.hex(' ')}")
    if raw[1] > MAX_DATA_LEN:
        raise FrameError(f"LEN 0x{raw[1]:02X} exceeds 0x{MAX_DATA_LEN:02X}")
    if len(raw) != raw[1] + overhead:
        raise FrameError(f"LEN says {raw[1] + overhead} bytes, got {len(raw)}")
    if not crc_matches(raw):
        raise FrameError(f"bad CRC: {raw.hex(' ')}")


def _check_fields(opcode: int, data: bytes) -> None:
    if not 0 <= opcode <= 0xFF:
        raise EncodeError(f"opcode {opcode} is not a byte")
    if len(data) > MAX_DATA_LEN:
        raise EncodeError(f"{len(data)} data bytes exceed {MAX_DATA_LEN}")


@dataclass(frozen=True, slots=True)
class Request:
    """A command, host -> module.

    ::

        +----+-----+--------+-----------+--------+--------+
        | FF | LEN | OPCODE | DATA[LEN] | CRC_HI | CRC_LO |   total LEN + 5
        +----+-----+--------+-----------+--------+--------+
              \\____ tm_crc covers LEN..DATA ____/
    """

    opcode: int
    data: bytes = b""

    def __post_init__(self) -> None:
        _check_fields(self.opcode, self.data)

    def to_bytes(self) -> bytes:
        body = bytes((len(self.data), self.opcode)) + self.data
        return bytes((SOF,)) + body + crc_bytes(body)

    @classmethod
    def from_bytes(cls, raw: bytes) -> Request:
        check_frame(raw, REQUEST_OVERHEAD)
        return cls.from_checked_bytes(raw)

    @classmethod
    def from_checked_bytes(cls, raw: bytes) -> Request:
        """For a decoder that has already framed ``raw`` and checked its CRC."""
        return cls(raw[2], raw[3:-2])


@dataclass(frozen=True, slots=True)
class Response:
    """A reply or a streamed record, module -> host. Status 0x0000 is success.

    ::

        +----+-----+--------+-----------+-----------+-----------+--------+--------+
        | FF | LEN | OPCODE | STATUS_HI | STATUS_LO | DATA[LEN] | CRC_HI | CRC_LO |  total LEN + 7
        +----+-----+--------+-----------+-----------+-----------+--------+--------+
              \\______________ tm_crc covers LEN..DATA _______________/
    """

    opcode: int
    status: int
    data: bytes = b""

    def __post_init__(self) -> None:
        _check_fields(self.opcode, self.data)
        if not 0 <= self.status <= 0xFFFF:
            raise EncodeError(f"status {self.status} is not 16 bits")

    def to_bytes(self) -> bytes:
        body = bytes((len(self.data), self.opcode)) + self.status.to_bytes(2, "big") + self.data
        return bytes((SOF,)) + body + crc_bytes(body)

    @classmethod
    def from_bytes(cls, raw: bytes) -> Response:
        check_frame(raw, RESPONSE_OVERHEAD)
        return cls.from_checked_bytes(raw)

    @classmethod
    def from_checked_bytes(cls, raw: bytes) -> Response:
        """For a decoder that has already framed ``raw`` and checked its CRC."""
        return cls(raw[2], (raw[3] << 8) | raw[4], raw[5:-2])
