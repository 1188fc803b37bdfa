"""CRC-16/CCITT-FALSE, the checksum of the serial-display protocol.

Parameters (Greg Cook's CRC catalogue naming): width 16, poly 0x1021, init 0xFFFF, refin false,
refout false, xorout 0x0000, check 0x29B1. Chosen because every small microcontroller library
has it (AVR ``_crc_ccitt_update`` is the reflected cousin; STM32's CRC unit and Zephyr's
``crc16_ccitt`` family compute this one) and because its check value makes a port easy to verify.
"""

from __future__ import annotations

import binascii
from typing import Final

CRC16_POLY: Final = 0x1021
CRC16_INIT: Final = 0xFFFF
CRC16_CHECK: Final = 0x29B1  # crc16_ccitt_false(b"123456789")


def crc16_ccitt_false(data: bytes | bytearray | memoryview, crc: int = CRC16_INIT) -> int:
    # binascii's CRC-CCITT (XMODEM's, in C) is this CRC given the 0xFFFF start.
    return binascii.crc_hqx(data, crc)
