"""Register maps of Modbus RTU weight transmitters, with presets (docs/drivers/modbus-scale.md 5.2).

There is no standard layout: each family puts its weight somewhere else. The common pattern is a
signed 32-bit integer in display units over two registers, high word first, with the number of
decimals fixed by the instrument's calibration. A map says where the weight is, how to read it,
how many decimals it carries, and which command register and codes tare and zero it.

Addresses are 0-based PDU addresses, as on the wire and in pymodbus (manual register 40008 is
address 7). Where a manual leaves a value UNCONFIRMED, the preset leaves it None and the installer
supplies it in the config with ``dataclasses.replace``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final, Literal

from drivers.errors import EncodeError

MODBUS_MAX_ADDRESS: Final = 0xFFFF
GENERIC_MAX_CHANNELS: Final = 16
MAX_DECIMALS: Final = 6


class ReadFunction(enum.IntEnum):
    HOLDING = 0x03  # FC03, what every family listed in docs/drivers/modbus-scale.md 5.2 uses
    INPUT = 0x04


class WeightFormat(enum.Enum):
    INT32 = "int32"
    UINT32 = "uint32"
    FLOAT32 = "float32"  # Eagle EI-series style: IEEE single, no decimals register


@dataclass(frozen=True, slots=True)
class RegisterMap:
    name: str
    weight_address: int
    function: ReadFunction = ReadFunction.HOLDING
    format: WeightFormat = WeightFormat.INT32
    word_order: Literal["big", "little"] = "big"  # "big" = high word first
    decimals: int = 0  # fixed decimals, used until a decimals register has been read
    decimals_address: int | None = None  # a register holding the decimals count (0..6)
    unit_g: float = 1.0  # grams per display unit: 1000.0 for an instrument set up in kg
    command_address: int | None = None
    tare_command: int | None = None
    zero_command: int | None = None

    def __post_init__(self) -> None:
        addresses = (self.weight_address + 1, self.decimals_address, self.command_address)
        if any(a is not None and not 0 <= a <= MODBUS_MAX_ADDRESS for a in addresses):
            raise EncodeError(f"{self.name}: register address outside 0..65535")
        if not 0 <= self.decimals <= MAX_DECIMALS:
            raise EncodeError(f"{self.name}: decimals {self.decimals} outside 0..{MAX_DECIMALS}")
        if self.unit_g <= 0:
            raise EncodeError(f"{self.name}: unit_g must be positive")


def generic_channel(channel: int, *, decimals: int = 0, unit_g: float = 1.0) -> RegisterMap:
    """Multi-channel RS485 weighing module: "current weight N" at 2*(N-1), FC03.

    Its decimal-point and tare registers are UNCONFIRMED (docs/drivers/modbus-scale.md 5.2), so
    none are set.
    """
    if not 1 <= channel <= GENERIC_MAX_CHANNELS:
        raise EncodeError(f"channel {channel} outside 1..{GENERIC_MAX_CHANNELS}")
    return RegisterMap(
        name=f"generic-ch{channel}",
        weight_address=2 * (channel - 1),
        decimals=decimals,
        unit_g=unit_g,
    )


# Laumas TLU/TLB family (also CAS CI-600D, Bosche WTS): gross weight H/L at 40008/40009, command
# register 40006. The command codes are UNCONFIRMED, so tare and zero stay unset here.
LAUMAS: Final = RegisterMap(name="laumas", weight_address=7, command_address=5)

# Flintec FT-13 "Modbus RTU HiLo": weight at 0-1, command register 8; 2 = TARE (manual p.48).
FLINTEC_FT13: Final = RegisterMap(
    name="flintec-ft13", weight_address=0, command_address=8, tare_command=2
)
FLINTEC_FT13_STATUS_ADDRESS: Final = 2
FLINTEC_FT13_TARE_ADDRESS: Final = 3

PRESETS: Final = {m.name: m for m in (LAUMAS, FLINTEC_FT13)}
# The names a config file uses (gateway/config/devices.py ``register_map``).
_CONFIG_NAMES: Final = {"laumas": LAUMAS, "flintec": FLINTEC_FT13, "flintec-ft13": FLINTEC_FT13}


def preset(name: str, *, channel: int = 1) -> RegisterMap:
    """The map a config names: "generic" (with its channel), "laumas" or "flintec"."""
    if name == "generic":
        return generic_channel(channel)
    try:
        return _CONFIG_NAMES[name]
    except KeyError:
        raise EncodeError(f"unknown register map {name!r}") from None
