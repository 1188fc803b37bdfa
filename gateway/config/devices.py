"""``[[readers]]`` and ``[[sensors]]``: one model per driver, chosen by ``driver``."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from gateway.config.base import DeviceId, Model, ZoneId


class _SerialDevice(Model):
    id: DeviceId
    port: Annotated[str, Field(min_length=1)]


Region = Literal["NA", "NA2", "NA3", "EU", "EU3", "IN", "JP", "PRC", "KR2", "AU", "NZ", "OPEN"]


class ThingMagicReader(_SerialDevice):
    driver: Literal["thingmagic"]
    baudrate: int = 115200
    antennas: dict[Annotated[int, Field(ge=1, le=16)], ZoneId] = Field(min_length=1)
    region: Region = "EU3"
    read_power_dbm: Annotated[float, Field(ge=0, le=31.5)] = 27.0
    search_timeout_ms: Annotated[int, Field(ge=50, le=10000)] = 1000

    def zones(self) -> dict[int, str]:
        return dict(self.antennas)


class _SingleZoneReader(_SerialDevice):
    zone: ZoneId

    def zones(self) -> dict[int, str]:
        return {0: self.zone}


class Em4100Reader(_SingleZoneReader):
    driver: Literal["em4100"]
    baudrate: int = 9600


class Pn532Reader(_SingleZoneReader):
    driver: Literal["pn532"]
    baudrate: int = 115200
    poll_interval_s: Annotated[float, Field(gt=0, le=10)] = 0.2


ReaderConfig = Annotated[
    ThingMagicReader | Em4100Reader | Pn532Reader, Field(discriminator="driver")
]


class ModbusScaleSensor(_SerialDevice):
    driver: Literal["modbus-scale"]
    zone: ZoneId
    baudrate: int = 9600
    unit: Annotated[int, Field(ge=1, le=247)] = 1
    register_map: Literal["generic", "laumas", "flintec"] = "generic"
    channel: Annotated[int, Field(ge=1, le=16)] = 1
    poll_hz: Annotated[float, Field(gt=0, le=50)] = 10.0


SensorConfig = Annotated[ModbusScaleSensor, Field(discriminator="driver")]
