"""``[[outputs]]``: the relays and displays the gateway drives, one model per driver.

Limits come from the devices: an LCUS board has at most 8 channels, a display frame carries at
most 247 bytes of text, an OpenEPaperLink tag is named by 12 or 16 hex digits. Tag MACs are
checked and normalised here, so a typo is a config error at start and not a failed action later.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, HttpUrl, field_validator

from drivers.errors import EncodeError
from drivers.openepaperlink import normalize_mac
from drivers.relay.commands import LCUS_MAX_CHANNEL
from drivers.serial_display.messages import ALL_LINES, MAX_TEXT
from gateway.config.base import Baudrate, DeviceId, Model, Name


class _SerialOutput(Model):
    id: DeviceId
    port: Annotated[str, Field(min_length=1)]


class RelayOutput(_SerialOutput):
    driver: Literal["relay"]
    baudrate: Baudrate = 9600
    channels: Annotated[int, Field(ge=1, le=LCUS_MAX_CHANNEL)] = 1
    # Multi-channel boards may answer the FF status query; single-channel ones never do. Only a
    # board that answers lets the gateway confirm a switch, so it is off unless configured.
    answers_status: bool = False


class SerialDisplayOutput(_SerialOutput):
    driver: Literal["serial-display"]
    baudrate: Baudrate = 115200
    lines: Annotated[int, Field(ge=1, le=ALL_LINES)] = 2
    line_length: Annotated[int, Field(ge=1, le=MAX_TEXT)] = 20  # characters
    ack_timeout_s: Annotated[float, Field(gt=0, le=10)] = 0.25
    retries: Annotated[int, Field(ge=0, le=20)] = 3


class OpenEPaperLinkOutput(Model):
    id: DeviceId
    driver: Literal["openepaperlink"]
    url: HttpUrl  # the access point, e.g. http://192.168.1.50
    tags: dict[Name, str] = Field(min_length=1)  # name -> MAC, as actions refer to them
    timeout_s: Annotated[float, Field(gt=0, le=60)] = 5.0

    @field_validator("url")
    @classmethod
    def _plain_http(cls, url: HttpUrl) -> HttpUrl:
        if url.scheme != "http":
            raise ValueError("the access point speaks plain http only")
        return url

    @field_validator("tags")
    @classmethod
    def _check_macs(cls, tags: dict[str, str]) -> dict[str, str]:
        try:
            return {name: normalize_mac(mac) for name, mac in tags.items()}
        except EncodeError as exc:
            raise ValueError(str(exc)) from exc


OutputConfig = Annotated[
    RelayOutput | SerialDisplayOutput | OpenEPaperLinkOutput, Field(discriminator="driver")
]
