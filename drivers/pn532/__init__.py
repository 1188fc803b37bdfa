"""NXP PN532 NFC controller over HSU (UART): frames, decoders, commands, responses, a poller."""

from drivers.pn532.commands import BAUDRATE, WAKEUP, Command
from drivers.pn532.decoder import Pn532CommandDecoder, Pn532Decoder
from drivers.pn532.frames import (
    Ack,
    ErrorFrame,
    InformationFrame,
    Nack,
    Pn532Frame,
    parse_frame,
)
from drivers.pn532.poller import (
    CardsPresent,
    ChipLost,
    Configured,
    NoCard,
    Pn532Poller,
    Pn532StateError,
    PollerEvent,
    Reaction,
    State,
)
from drivers.pn532.responses import (
    PN532_V1_6,
    FirmwareVersion,
    InListPassiveTargetResponse,
    TypeATarget,
)

__all__ = [
    "BAUDRATE",
    "PN532_V1_6",
    "WAKEUP",
    "Ack",
    "CardsPresent",
    "ChipLost",
    "Command",
    "Configured",
    "ErrorFrame",
    "FirmwareVersion",
    "InListPassiveTargetResponse",
    "InformationFrame",
    "Nack",
    "NoCard",
    "Pn532CommandDecoder",
    "Pn532Decoder",
    "Pn532Frame",
    "Pn532Poller",
    "Pn532StateError",
    "PollerEvent",
    "Reaction",
    "State",
    "TypeATarget",
    "parse_frame",
]
