"""``[[readers]]`` and ``[[sensors]]``: one model per driver, chosen by ``driver``."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from drivers.modbus_scale.registers import ReadFunction, RegisterMap, WeightFormat, preset
from gateway.config.base import Baudrate, DeviceId, Model, ZoneId


class _SerialDevice(Model):
    id: DeviceId
    port: Annotated[str, Field(min_length=1)]


GarbageSeconds = Annotated[float, Field(ge=1, le=3600)]
Region = Literal["NA", "NA2", "NA3", "EU", "EU3", "IN", "JP", "PRC", "KR2", "AU", "NZ", "OPEN"]


class ThingMagicReader(_SerialDevice):
    driver: Literal["thingmagic"]
    baudrate: Baudrate = 115200
    antennas: dict[Annotated[int, Field(ge=1, le=16)], ZoneId] = Field(min_length=1)
    region: Region = "EU3"
    read_power_dbm: Annotated[float, Field(ge=0, le=31.5)] = 27.0
    search_timeout_ms: Annotated[int, Field(ge=50, le=10000)] = 1000
    # No longer used (a warning at start): streaming readers are read once per presence.tick_ms.
    # Accepted so that configs that set it still load.
    coalesce_ms: Annotated[float, Field(ge=0, le=100)] = 10.0
    # Bytes arriving this long without one valid frame (a wrong baud rate, noise, a broken
    # cable) put the reader in state error until a valid frame comes again.
    garbage_error_s: GarbageSeconds = 10.0

    def zones(self) -> dict[int, str]:
        return dict(self.antennas)


class _SingleZoneReader(_SerialDevice):
    zone: ZoneId

    def zones(self) -> dict[int, str]:
        return {0: self.zone}


class Em4100Reader(_SingleZoneReader):
    driver: Literal["em4100"]
    baudrate: Baudrate = 9600
    # Bytes arriving this long without one valid frame (a wrong baud rate, noise, a broken
    # cable) put the reader in state error until a valid frame comes again.
    garbage_error_s: GarbageSeconds = 10.0


class Pn532Reader(_SingleZoneReader):
    driver: Literal["pn532"]
    baudrate: Baudrate = 115200
    poll_interval_s: Annotated[float, Field(gt=0, le=10)] = 0.2


ReaderConfig = Annotated[
    ThingMagicReader | Em4100Reader | Pn532Reader, Field(discriminator="driver")
]


Address = Annotated[int, Field(ge=0, le=65535)]


class RegisterOverrides(Model):
    """``[sensors.registers]``: what an instrument does differently from its preset."""

    weight_address: Annotated[int, Field(ge=0, le=65534)] | None = None  # 0-based PDU address
    function: Literal["holding", "input"] | None = None
    format: Literal["int32", "uint32", "float32"] | None = None
    word_order: Literal["big", "little"] | None = None  # "big": high word first
    decimals_address: Address | None = None
    command_address: Address | None = None
    tare_command: Address | None = None
    zero_command: Address | None = None


class ModbusScaleSensor(_SerialDevice):
    """A shelf scale behind a Modbus RTU weight transmitter (docs/shelves.md)."""

    driver: Literal["modbus-scale"]
    zone: ZoneId
    baudrate: Baudrate = 9600
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    unit: Annotated[int, Field(ge=1, le=247)] = 1  # the transmitter's Modbus device id
    register_map: Literal["generic", "laumas", "flintec"] = "generic"
    channel: Annotated[int, Field(ge=1, le=16)] = 1
    registers: RegisterOverrides = RegisterOverrides()
    # None: the preset's decimals, or its decimals register where it has one.
    decimals: Annotated[int, Field(ge=0, le=6)] | None = None
    weight_unit: Literal["g", "kg"] = "g"  # what the instrument's display unit is
    factor: Annotated[float, Field(gt=0, le=1e6)] = 1.0  # a calibration correction on top
    tare_on_start: bool = False
    use_fc06: bool = False  # write the command register with FC06 instead of FC16
    poll_hz: Annotated[float, Field(gt=0, le=50)] = 10.0
    # While the load is still (gateway/devices/pace.py); poll_hz again as soon as it moves.
    idle_poll_hz: Annotated[float, Field(gt=0, le=50)] = 2.0
    timeout_s: Annotated[float, Field(gt=0, le=10)] = 0.5
    max_lost_polls: Annotated[int, Field(ge=1, le=100)] = 5
    # Settling (gateway/stages/shelf.py) and fusion (gateway/stages/fusion.py).
    settle_s: Annotated[float, Field(gt=0, le=30)] = 0.5
    stable_g: Annotated[float, Field(gt=0)] = 5.0
    min_delta_g: Annotated[float, Field(gt=0)] = 10.0
    match_window_s: Annotated[float, Field(gt=0, le=60)] = 5.0

    @model_validator(mode="after")
    def _check_scale(self) -> ModbusScaleSensor:
        if self.min_delta_g <= self.stable_g:
            raise ValueError("min_delta_g must be larger than stable_g, or noise makes events")
        if self.settle_s * self.poll_hz < 2:
            raise ValueError("settle_s must span at least two polls (settle_s * poll_hz >= 2)")
        regmap = self.regmap()
        if self.tare_on_start and (regmap.command_address is None or regmap.tare_command is None):
            raise ValueError(
                f"tare_on_start needs registers.command_address and registers.tare_command "
                f"(the {regmap.name} preset has no known tare command)"
            )
        return self

    def regmap(self) -> RegisterMap:
        """The preset ``register_map`` names, with the overrides, decimals and unit applied."""
        base = preset(self.register_map, channel=self.channel)
        changes: dict[str, Any] = {
            k: v for k, v in self.registers.model_dump().items() if v is not None
        }
        if "function" in changes:
            changes["function"] = ReadFunction[changes["function"].upper()]
        if "format" in changes:
            changes["format"] = WeightFormat(changes["format"])
        if self.decimals is not None:  # a configured count wins over the instrument's register
            changes.update(decimals=self.decimals, decimals_address=None)
        changes["unit_g"] = (
            base.unit_g * (1000.0 if self.weight_unit == "kg" else 1.0) * self.factor
        )
        return dataclasses.replace(base, **changes)


SensorConfig = Annotated[ModbusScaleSensor, Field(discriminator="driver")]
