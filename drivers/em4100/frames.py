"""EM4100 frames as 125 kHz readers with a UART output send them (docs/drivers/em4100.md section 2).

Two readers, one payload. The RDM6300 / RDM630 sends 14 bytes, the ID-12LA / ID-20LA in ASCII
mode sends 16 (a CR LF before the ETX); both carry the same 10 hex digits and the same XOR
checksum. Sources: arduino12/rdm6300 ``src/rdm6300.h`` (size 14, 0x02 / 0x03, 9600 baud) and
``src/rdm6300.cpp`` (the checksum: XOR of the five bytes); harp-tech/device.rfidreader
``Firmware/RfidReader/app.c`` (the 16-byte layout with CR LF at 13 and 14).
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from functools import reduce
from operator import xor
from typing import Final, Literal

from drivers.errors import EncodeError, FrameError

STX: Final = 0x02
ETX: Final = 0x03
CR: Final = 0x0D
LF: Final = 0x0A
DATA_CHARS: Final = 10  # 2 version + 8 tag-id hex characters
CHECKSUM_CHARS: Final = 2
RDM6300_PACKET_SIZE: Final = 14  # name as in arduino12/rdm6300
ID12_PACKET_SIZE: Final = 16
BAUDRATE: Final = 9600

# Both framings agree on the first 13 bytes; byte 13 tells them apart.
HEX_END: Final = 1 + DATA_CHARS + CHECKSUM_CHARS
HEX_DIGITS: Final = frozenset(b"0123456789ABCDEFabcdef")

Style = Literal["rdm6300", "id12"]


def checksum(payload: bytes) -> int:
    """XOR of the five data bytes (version and the four tag-id bytes)."""
    return reduce(xor, payload, 0)


@dataclass(frozen=True, slots=True)
class Em4100Frame:
    """One card read.

    RDM6300, 14 bytes::

        +-----+-------------+----------------+----------+-----+
        | STX | version (2) | tag id (8)     | XOR (2)  | ETX |
        | 02  | ASCII hex   | ASCII hex, BE  | ASCII hex| 03  |
        +-----+-------------+----------------+----------+-----+

    ID-12LA, 16 bytes: the same, then ``0D 0A`` before the ETX.

    ``version`` is the first data byte (a "version" or customer code), ``tag_id`` the 32-bit
    number made of the other four, big-endian; cards print it in decimal (``card_number``).
    """

    version: int
    tag_id: int

    def __post_init__(self) -> None:
        if not 0 <= self.version <= 0xFF:
            raise EncodeError(f"EM4100 version byte out of range: {self.version!r}")
        if not 0 <= self.tag_id <= 0xFFFF_FFFF:
            raise EncodeError(f"EM4100 tag id out of range: {self.tag_id!r}")

    @property
    def payload(self) -> bytes:
        return bytes([self.version]) + self.tag_id.to_bytes(4, "big")

    @property
    def checksum(self) -> int:
        return checksum(self.payload)

    @property
    def raw_id(self) -> str:
        """The 10 hex digits of the frame, upper case: the card's raw id (docs/contract.md,
        "Events")."""
        return f"{self.version:02X}{self.tag_id:08X}"

    @property
    def card_number(self) -> str:
        """The number printed on most cards: the tag id in decimal, padded to 10 digits."""
        return f"{self.tag_id:010d}"

    @classmethod
    def from_raw_id(cls, raw_id: str) -> Em4100Frame:
        if len(raw_id) != DATA_CHARS or not set(raw_id.encode()) <= HEX_DIGITS:
            raise EncodeError(f"an EM4100 raw id is 10 hex digits, got {raw_id!r}")
        return cls(version=int(raw_id[:2], 16), tag_id=int(raw_id[2:], 16))

    def to_bytes(self, style: Style = "rdm6300") -> bytes:
        hex_part = f"{self.raw_id}{self.checksum:02X}".encode("ascii")
        trailer = b"\r\n\x03" if style == "id12" else b"\x03"
        return bytes([STX]) + hex_part + trailer

    @classmethod
    def from_bytes(cls, data: bytes) -> Em4100Frame:
        """Parse exactly one frame of either framing; anything else is a ``FrameError``."""
        if len(data) not in (RDM6300_PACKET_SIZE, ID12_PACKET_SIZE):
            raise FrameError(f"EM4100 frame of {len(data)} bytes; expected 14 or 16")
        if data[0] != STX or data[-1] != ETX:
            raise FrameError("EM4100 frame without STX ... ETX")
        if len(data) == ID12_PACKET_SIZE and data[HEX_END : HEX_END + 2] != b"\r\n":
            raise FrameError("16-byte EM4100 frame without CR LF before ETX")
        return cls._from_hex(data[1:HEX_END])

    @classmethod
    def _from_hex(cls, hex_part: bytes) -> Em4100Frame:
        if not set(hex_part) <= HEX_DIGITS:
            raise FrameError(f"non-hex character in EM4100 frame: {hex_part!r}")
        raw = binascii.unhexlify(hex_part)
        if checksum(raw[:5]) != raw[5]:
            raise FrameError(f"EM4100 checksum mismatch: {hex_part!r}")
        return cls(version=raw[0], tag_id=int.from_bytes(raw[1:5], "big"))
