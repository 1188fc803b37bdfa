"""Modbus RTU load-cell transmitters (docs/drivers/modbus-scale.md 5): register maps, weights,
tare commands.

Framing and CRC are pymodbus's; see ``scale.py`` for how a session uses this package.
"""

from drivers.modbus_scale.conversion import (
    grams_from_raw,
    raw_from_registers,
    registers_from_grams,
)
from drivers.modbus_scale.registers import (
    FLINTEC_FT13,
    LAUMAS,
    PRESETS,
    ReadFunction,
    RegisterMap,
    WeightFormat,
    generic_channel,
    preset,
)
from drivers.modbus_scale.rtu import RtuDecoder, encode_adu
from drivers.modbus_scale.scale import Scale, WeightReading

__all__ = [
    "FLINTEC_FT13",
    "LAUMAS",
    "PRESETS",
    "ReadFunction",
    "RegisterMap",
    "RtuDecoder",
    "Scale",
    "WeightFormat",
    "WeightReading",
    "encode_adu",
    "generic_channel",
    "grams_from_raw",
    "preset",
    "raw_from_registers",
    "registers_from_grams",
]
