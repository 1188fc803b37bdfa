"""LCUS-type USB relay boards (docs/drivers/relay.md 4.1): 4-byte switch commands, optional ASCII
status."""

from drivers.relay.commands import (
    BAUDRATE,
    LCUS_START,
    STATUS_QUERY,
    CommandDecoder,
    RelayCommand,
)
from drivers.relay.status import ChannelStatus, StatusDecoder

__all__ = [
    "BAUDRATE",
    "LCUS_START",
    "STATUS_QUERY",
    "ChannelStatus",
    "CommandDecoder",
    "RelayCommand",
    "StatusDecoder",
]
