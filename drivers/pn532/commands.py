"""The PN532 commands a card-reading host needs, encoded to the bytes that go on the wire.

Codes and parameter layouts from NXP UM0701-02 section 7 as used by nfcpy
``src/nfc/clf/pn532.py`` (``sam_configuration``, ``rf_configuration(0x05, "\\x01\\x00\\x01")``)
and libnfc ``libnfc/drivers/pn532_uart.c`` (``pn532_uart_wakeup``). docs/drivers/pn532.md 3.2
and 3.3.
"""

from __future__ import annotations

import enum
from typing import Final

from drivers.errors import EncodeError
from drivers.pn532.frames import ACK_FRAME, TFI_HOST_TO_PN532, InformationFrame

BAUDRATE: Final = 115200  # the PN532's initial HSU speed

# 0x55 0x55 wakes the HSU from power-down; the zeros give the chip time to start its oscillator
# before the first frame. libnfc sends 0x55 0x55 and 14 zeros (older versions: 3).
WAKEUP: Final = b"\x55\x55" + bytes(14)


class Command(enum.IntEnum):
    """Command codes (UM0701 names in comments); a response's code is the command's + 1."""

    GET_FIRMWARE_VERSION = 0x02  # GetFirmwareVersion
    SAM_CONFIGURATION = 0x14  # SAMConfiguration
    RF_CONFIGURATION = 0x32  # RFConfiguration
    IN_DESELECT = 0x44  # InDeselect
    IN_LIST_PASSIVE_TARGET = 0x4A  # InListPassiveTarget
    IN_RELEASE = 0x52  # InRelease

    @property
    def response_code(self) -> int:
        return self.value + 1


class SamMode(enum.IntEnum):
    NORMAL = 0x01
    VIRTUAL_CARD = 0x02
    WIRED_CARD = 0x03
    DUAL_CARD = 0x04


class BrTy(enum.IntEnum):
    """Baud rate and modulation of InListPassiveTarget; only type A is used here."""

    TYPE_A_106 = 0x00


RF_CONFIG_ITEM_MAX_RETRIES: Final = 0x05
IN_LIST_PASSIVE_TARGET_MAX_TG: Final = 2


def _byte(name: str, value: int) -> int:
    if not 0 <= value <= 0xFF:
        raise EncodeError(f"{name} must fit in one byte, got {value!r}")
    return value


def command_frame(command: Command, params: bytes = b"") -> bytes:
    return InformationFrame(TFI_HOST_TO_PN532, command, params).to_bytes()


def get_firmware_version() -> bytes:
    return command_frame(Command.GET_FIRMWARE_VERSION)


def sam_configuration(
    mode: SamMode = SamMode.NORMAL, timeout: int = 0, use_irq: bool = False
) -> bytes:
    """Must be the first command after a wake-up from LowVbat (libnfc, citing the C106 note)."""
    params = bytes([mode, _byte("timeout", timeout), int(use_irq)])
    return command_frame(Command.SAM_CONFIGURATION, params)


def rf_configuration_max_retries(
    mx_rty_atr: int = 0x01, mx_rty_psl: int = 0x00, mx_rty_passive_activation: int = 0x01
) -> bytes:
    """Bound the retries so that InListPassiveTarget answers NbTg=0 instead of blocking.

    The defaults are nfcpy's (``D4 32 05 01 00 01``); 0xFF means retry forever, which is the
    chip's own default for passive activation (Seeed-Studio/PN532 issue #38).
    """
    params = bytes(
        [
            RF_CONFIG_ITEM_MAX_RETRIES,
            _byte("mx_rty_atr", mx_rty_atr),
            _byte("mx_rty_psl", mx_rty_psl),
            _byte("mx_rty_passive_activation", mx_rty_passive_activation),
        ]
    )
    return command_frame(Command.RF_CONFIGURATION, params)


def in_list_passive_target(max_tg: int = 1, brty: BrTy = BrTy.TYPE_A_106) -> bytes:
    if not 1 <= max_tg <= IN_LIST_PASSIVE_TARGET_MAX_TG:
        raise EncodeError(f"MaxTg must be 1 or 2, got {max_tg!r}")
    return command_frame(Command.IN_LIST_PASSIVE_TARGET, bytes([max_tg, brty]))


def in_deselect(tg: int = 0) -> bytes:
    """Deselect target ``tg`` (0: all), keeping its data for a later InSelect."""
    return command_frame(Command.IN_DESELECT, bytes([_byte("tg", tg)]))


def in_release(tg: int = 0) -> bytes:
    """Release target ``tg`` (0: all): the chip forgets it; the next poll finds it anew."""
    return command_frame(Command.IN_RELEASE, bytes([_byte("tg", tg)]))


def ack() -> bytes:
    """From the host: abort the command the chip is running."""
    return ACK_FRAME
