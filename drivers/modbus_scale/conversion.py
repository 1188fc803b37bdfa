"""Register values <-> weights.

pymodbus does the word assembly (``convert_from_registers``), so byte and word order follow its
documented behaviour: ``word_order="big"`` means high word first, the layout of every family in
docs/drivers/modbus-scale.md 5.2. Scaling to grams is ours: raw / 10**decimals display units,
times ``unit_g``.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from typing import Final

from pymodbus.client.mixin import ModbusClientMixin
from pymodbus.exceptions import ModbusException

from drivers.errors import EncodeError, FrameError
from drivers.modbus_scale.registers import RegisterMap, WeightFormat

WEIGHT_REGISTERS: Final = 2

_DATATYPE: Final = {
    WeightFormat.INT32: ModbusClientMixin.DATATYPE.INT32,
    WeightFormat.UINT32: ModbusClientMixin.DATATYPE.UINT32,
    WeightFormat.FLOAT32: ModbusClientMixin.DATATYPE.FLOAT32,
}


def raw_from_registers(registers: Sequence[int], regmap: RegisterMap) -> int | float:
    if len(registers) != WEIGHT_REGISTERS:
        raise FrameError(f"{regmap.name}: expected 2 weight registers, got {len(registers)}")
    try:
        value = ModbusClientMixin.convert_from_registers(
            list(registers), _DATATYPE[regmap.format], word_order=regmap.word_order
        )
    except (ModbusException, ValueError, OverflowError, struct.error) as e:
        raise FrameError(f"{regmap.name}: registers {list(registers)} do not convert") from e
    assert isinstance(value, int | float)
    return value


def grams_from_raw(raw: int | float, regmap: RegisterMap, decimals: int) -> float:
    return raw / 10.0**decimals * regmap.unit_g


def registers_from_grams(grams: float, regmap: RegisterMap, decimals: int) -> list[int]:
    """The registers an instrument shows for ``grams``; the simulator's half of the codec."""
    units = grams / regmap.unit_g * 10.0**decimals
    value: int | float = units if regmap.format is WeightFormat.FLOAT32 else round(units)
    if not math.isfinite(units):
        raise EncodeError(f"{regmap.name}: weight {grams} g is not finite")
    try:
        return ModbusClientMixin.convert_to_registers(
            value, _DATATYPE[regmap.format], word_order=regmap.word_order
        )
    except (ModbusException, ValueError, OverflowError, struct.error) as e:
        raise EncodeError(f"{regmap.name}: {grams} g does not fit {regmap.format.value}") from e
