"""Our serial display protocol (docs/protocols/serial-display.md): framed, CRC-checked, acked."""

from drivers.serial_display.crc import crc16_ccitt_false
from drivers.serial_display.decoder import (
    CommandDecoder,
    FrameDecoder,
    Received,
    Refused,
    ReplyDecoder,
)
from drivers.serial_display.frames import MAX_PAYLOAD, SOF, ErrorCode, Frame, FrameType
from drivers.serial_display.link import Delivered, DisplayLink, Failed
from drivers.serial_display.messages import (
    ALL_LINES,
    FOREVER,
    MAX_TEXT,
    Ack,
    Clear,
    Command,
    InvalidMessageError,
    Nak,
    Ping,
    Reply,
    SetBrightness,
    ShowText,
    encode,
    encode_reply,
    parse_command,
    parse_reply,
)

__all__ = [
    "ALL_LINES",
    "FOREVER",
    "MAX_PAYLOAD",
    "MAX_TEXT",
    "SOF",
    "Ack",
    "Clear",
    "Command",
    "CommandDecoder",
    "Delivered",
    "DisplayLink",
    "ErrorCode",
    "Failed",
    "Frame",
    "FrameDecoder",
    "FrameType",
    "InvalidMessageError",
    "Nak",
    "Ping",
    "Received",
    "Refused",
    "Reply",
    "ReplyDecoder",
    "SetBrightness",
    "ShowText",
    "crc16_ccitt_false",
    "encode",
    "encode_reply",
    "parse_command",
    "parse_reply",
]
