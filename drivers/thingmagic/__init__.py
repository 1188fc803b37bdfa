"""ThingMagic / JADAK Mercury embedded modules (M6e, M6e Nano, M6e Micro, M7E) over serial.

Sans-I/O: ``commands`` builds requests, ``decoder`` turns received bytes into ``Response``
frames, ``records`` turns streamed frames into tag reads. See docs/drivers/thingmagic.md.
"""

from drivers.thingmagic.crc import tm_crc
from drivers.thingmagic.decoder import RequestDecoder, ResponseDecoder
from drivers.thingmagic.frames import Request, Response
from drivers.thingmagic.records import (
    KeepAlive,
    ReaderWarning,
    ReadingStarted,
    ReadingStopped,
    StatsRecord,
    StreamMessage,
    TagRead,
    VersionInfo,
    encode_keepalive,
    encode_stream_record,
    encode_tag_buffer,
    parse_stream_message,
    parse_tag_buffer,
    parse_tag_count,
)

__all__ = [
    "KeepAlive",
    "ReaderWarning",
    "ReadingStarted",
    "ReadingStopped",
    "Request",
    "RequestDecoder",
    "Response",
    "ResponseDecoder",
    "StatsRecord",
    "StreamMessage",
    "TagRead",
    "VersionInfo",
    "encode_keepalive",
    "encode_stream_record",
    "encode_tag_buffer",
    "parse_stream_message",
    "parse_tag_buffer",
    "parse_tag_count",
    "tm_crc",
]
