"""The two CRCs of the ThingMagic serial protocol (docs/drivers/thingmagic.md 1.3 and 1.9).

``tm_crc`` protects every frame. mercuryapi calls it a "ThingMagic-mutated CRC ... not a CCITT
CRC-16, though it looks close": the message is shifted *into* the register (poly 0x1021, init
0xFFFF, no augmentation, no final XOR), so it is not CRC-16/CCITT-FALSE of the same bytes.
mercuryapi walks a 16-entry nibble table. Because the register is shifted by the message itself,
the last two message bytes only ever get XORed in, and everything before them is an ordinary
non-augmented CRC-16 with poly 0x1021 from init 0x1D0F (docs/drivers/thingmagic.md 1.3, verified
on every logged frame). That part is ``binascii.crc_hqx``, in C: the decoder recomputes the CRC for
every 0xFF candidate while resynchronising, so this is the hot path under garbage. Shorter inputs
take the nibble table, folded into a 256-entry byte table built from it at import.

``gen2_crc16`` is the tag's own StoredCRC (CRC-16/GENIBUS over PC + EPC), which the module
echoes after the EPC; the simulator needs it to build realistic records.
"""

from __future__ import annotations

import binascii
from typing import Final

TM_CRC_INIT: Final = 0xFFFF
TM_CRC_NIBBLE_TABLE: Final = (
    0x0000, 0x1021, 0x2042, 0x3063, 0x4084, 0x50A5, 0x60C6, 0x70E7,
    0x8108, 0x9129, 0xA14A, 0xB16B, 0xC18C, 0xD1AD, 0xE1CE, 0xF1EF,
)  # fmt: skip
# Register value of the equivalent plain CRC-16 (poly 0x1021) before the first byte.
HQX_INIT_EQUIVALENT: Final = 0x1D0F
GEN2_CRC_POLY: Final = 0x1021


def _nibble_step(crc: int, nibble: int) -> int:
    return (((crc << 4) | nibble) & 0xFFFF) ^ TM_CRC_NIBBLE_TABLE[crc >> 12]


def _byte_table() -> tuple[int, ...]:
    # The register update is linear, so feeding a zero byte into a register holding only the high
    # byte ``h`` gives exactly the term that high byte contributes to the next register value.
    return tuple(_nibble_step(_nibble_step(h << 8, 0), 0) for h in range(256))


_BYTE_TABLE: Final = _byte_table()


def tm_crc(data: bytes | bytearray | memoryview) -> int:
    """CRC over a frame from LEN through the last data byte (the 0xFF header is excluded)."""
    if len(data) < 2:
        return tm_crc_table(data)
    return binascii.crc_hqx(data[:-2], HQX_INIT_EQUIVALENT) ^ int.from_bytes(data[-2:], "big")


def tm_crc_table(data: bytes | bytearray | memoryview) -> int:
    """mercuryapi's algorithm as written, one byte (two nibbles) per step."""
    crc = TM_CRC_INIT
    table = _BYTE_TABLE
    for byte in data:
        crc = (((crc << 8) | byte) & 0xFFFF) ^ table[crc >> 8]
    return crc


def gen2_crc16(data: bytes) -> int:
    """CRC-16/GENIBUS (poly 0x1021, init 0xFFFF, inverted result): a Gen2 tag's StoredCRC."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ GEN2_CRC_POLY) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc ^ 0xFFFF
