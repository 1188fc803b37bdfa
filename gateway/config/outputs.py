"""``[[outputs]]``: the displays and actuators the gateway drives."""

from __future__ import annotations

from typing import Literal

from gateway.config.base import DeviceId, Model


class OutputConfig(Model):
    id: DeviceId
    driver: Literal["relay", "serial-display", "openepaperlink"]
    port: str | None = None  # serial port, or the access point's base URL for openepaperlink
    baudrate: int | None = None
