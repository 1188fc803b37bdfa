"""The VERSION (0x03) reply: what module this is and what it speaks (docs/drivers/thingmagic.md
1.7).

::

    DATA (20 bytes): bootloader[4] | hardware[4] | firmware date[4] BCD YYYYMMDD
                     | firmware version[4] | supported protocols u32 (bit p-1 = protocol p)

Captured from an M6e Nano: ``FF 14 03 00 00 14 12 08 00 30 00 00 02 20 15 03 10 01 03 01 47
00 00 00 10 EB FF`` (hardware byte 0x30 = M6e Nano, firmware 2015-03-10, Gen2 only).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

from drivers.errors import EncodeError, FrameError
from drivers.thingmagic.commands import OPCODE_VERSION
from drivers.thingmagic.frames import Response
from drivers.thingmagic.status import SUCCESS

VERSION_DATA_LEN: Final = 20
TMR_SR_MODEL_M5E: Final = 0x00
TMR_SR_MODEL_M6E: Final = 0x18
TMR_SR_MODEL_M6E_I: Final = 0x19
TMR_SR_MODEL_MICRO: Final = 0x20
TMR_SR_MODEL_M6E_NANO: Final = 0x30
TMR_SR_MODEL_M3E: Final = 0x80


def _bcd_date(raw: bytes) -> dt.date:
    digits = raw.hex()
    if not digits.isdigit():
        raise FrameError(f"firmware date {raw.hex(' ')} is not BCD")
    try:
        return dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError as exc:
        raise FrameError(f"firmware date {raw.hex(' ')}: {exc}") from None


def _protocol_mask(protocols: frozenset[int]) -> bytes:
    if any(not 1 <= p <= 32 for p in protocols):
        raise EncodeError(f"protocol ids are 1..32: {sorted(protocols)}")
    return sum(1 << (p - 1) for p in protocols).to_bytes(4, "big")


@dataclass(frozen=True, slots=True)
class VersionInfo:
    bootloader: bytes
    hardware: bytes  # byte 0 is the model, see ``model``
    firmware_date: dt.date
    firmware_version: bytes
    protocols: frozenset[int]  # supported tag protocol ids, e.g. {0x05} for Gen2 only

    @property
    def model(self) -> int:
        return self.hardware[0]

    @property
    def firmware(self) -> str:
        """The version as URA shows it, e.g. ``01.03.01.47``."""
        return ".".join(f"{b:02X}" for b in self.firmware_version)

    @classmethod
    def from_response(cls, resp: Response) -> VersionInfo:
        data = resp.data
        if resp.opcode != OPCODE_VERSION or resp.status != SUCCESS:
            raise FrameError(f"not a VERSION reply: opcode 0x{resp.opcode:02X}")
        if len(data) != VERSION_DATA_LEN:
            raise FrameError(f"VERSION reply has {len(data)} data bytes, not 20")
        mask = int.from_bytes(data[16:20], "big")
        protocols = frozenset(p for p in range(1, 33) if mask >> (p - 1) & 1)
        return cls(data[0:4], data[4:8], _bcd_date(data[8:12]), data[12:16], protocols)

    def to_response(self) -> Response:
        for name in ("bootloader", "hardware", "firmware_version"):
            if len(getattr(self, name)) != 4:
                raise EncodeError(f"{name} must be 4 bytes")
        day = self.firmware_date
        date = bytes.fromhex(f"{day.year:04d}{day.month:02d}{day.day:02d}")
        body = self.bootloader + self.hardware + date + self.firmware_version
        return Response(OPCODE_VERSION, SUCCESS, body + _protocol_mask(self.protocols))
