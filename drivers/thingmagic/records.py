"""What a module sends while reading: stream records and tag-buffer replies
(docs/drivers/thingmagic.md 1.8-1.10).

A continuous read streams opcode 0x22 frames. Their DATA starts with a header whose layout depends
on the firmware: newer firmware puts a multi-select marker (0x88; 0x81 BAP, 0x84 read-after-write)
first, older firmware does not, and both must be accepted::

    plain:        option | search flags u16 | [metadata flags u16] | response type | record
    multi-select: 0x88 | option | search flags u16 | [metadata flags u16] | response type | record

The metadata-flags word is present only when the option has bit 0x10 (mercuryapi:
``response_type_pos = (option & 0x10) ? ... : ...``). Response type 0x01 is a tag record, 0x02 a
status/stats record whose payload is not decoded (UNCONFIRMED layout). Status 0x0400 on 0x22 is the
keep-alive at the end of each search cycle, 0x0504 and 0x0505 are warnings. Opcode 0x2F acks the
start (option 01) and the stop (option 02) of reading.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from drivers.errors import DeviceError, EncodeError, FrameError
from drivers.thingmagic.codec import Cursor, pack_uint
from drivers.thingmagic.commands import (
    OPCODE_GET_TAG_ID_BUFFER,
    OPCODE_MULTI_PROTOCOL_TAG_OP,
    OPCODE_READ_TAG_ID_MULTIPLE,
    SINGULATION_OPTION_FLAG_METADATA,
    TM_OPTION_CONTINUOUS_READING,
    TM_OPTION_STOP_READING,
)
from drivers.thingmagic.frames import Response
from drivers.thingmagic.status import NO_TAGS_FOUND, SUCCESS, describe
from drivers.thingmagic.tag_read import (
    METADATA_FLAG_TIMESTAMP,
    TagRead,
    decode_metadata,
    decode_tag_read,
    encode_metadata,
    encode_tag_read,
)
from drivers.thingmagic.version import VersionInfo

__all__ = [
    "KeepAlive",
    "ReaderWarning",
    "ReadingStarted",
    "ReadingStopped",
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
]

TMR_SR_TAGOP_MULTI_SELECT: Final = 0x88
MULTI_SELECT_MARKERS: Final = frozenset({TMR_SR_TAGOP_MULTI_SELECT, 0x81, 0x84})
RESPONSE_TYPE_TAG: Final = 0x01
RESPONSE_TYPE_STATUS: Final = 0x02
CAPTURED_KEEPALIVE_SEARCH_FLAGS: Final = 0x051F  # 2024 capture data22_3


@dataclass(frozen=True, slots=True)
class KeepAlive:
    """End of one search cycle (status 0x0400, "no tags found"), about once per second."""

    status: int = NO_TAGS_FOUND
    timestamp_ms: int | None = None


@dataclass(frozen=True, slots=True)
class ReaderWarning:
    """A non-success status inside the stream: 0x0504 temperature throttle, 0x0505 high
    return loss (check the antenna), or any other error the module reports while reading."""

    status: int

    def __str__(self) -> str:
        return describe(self.status)

    def to_response(self) -> Response:
        return Response(OPCODE_READ_TAG_ID_MULTIPLE, self.status)


@dataclass(frozen=True, slots=True)
class StatsRecord:
    """Response type 0x02: the bytes after the type byte, undecoded."""

    raw: bytes


@dataclass(frozen=True, slots=True)
class ReadingStarted:
    """0x2F with option 01: the module accepted the start of a continuous read."""

    def to_response(self) -> Response:
        # Captured: FF 04 2F 00 00 01 22 00 00 6D C3 (option, sub-opcode, search flags 0000).
        return Response(OPCODE_MULTI_PROTOCOL_TAG_OP, SUCCESS, bytes.fromhex("01 22 00 00"))


@dataclass(frozen=True, slots=True)
class ReadingStopped:
    """0x2F with option 02: the module has stopped and flushed its reads."""

    def to_response(self) -> Response:
        # Captured: FF 01 2F 00 00 02 30 E6.
        return Response(OPCODE_MULTI_PROTOCOL_TAG_OP, SUCCESS, bytes((TM_OPTION_STOP_READING,)))


StreamMessage = TagRead | KeepAlive | ReaderWarning | StatsRecord | ReadingStarted | ReadingStopped


@dataclass(frozen=True, slots=True)
class _StreamHeader:
    metadata_flags: int  # 0 when the option lacks 0x10 and no flags word is sent
    response_type: int


def _parse_header(cur: Cursor) -> _StreamHeader:
    option = cur.u8()
    if option in MULTI_SELECT_MARKERS:
        option = cur.u8()
    cur.u16()  # search flags echo
    flags = cur.u16() if option & SINGULATION_OPTION_FLAG_METADATA else 0
    return _StreamHeader(flags, cur.u8())


def _stream_header(*, metadata_flags: int, search_flags: int, multi_select: bool) -> bytes:
    marker = bytes((TMR_SR_TAGOP_MULTI_SELECT,)) if multi_select else b""
    fields = pack_uint(search_flags, 2, "search_flags") + pack_uint(
        metadata_flags, 2, "metadata_flags"
    )
    return marker + bytes((SINGULATION_OPTION_FLAG_METADATA,)) + fields


def _parse_keepalive(resp: Response) -> KeepAlive:
    if not resp.data:
        return KeepAlive(resp.status)
    cur = Cursor(resp.data)
    header = _parse_header(cur)
    timestamp = decode_metadata(cur, header.metadata_flags).timestamp_ms
    cur.expect_end()
    return KeepAlive(resp.status, timestamp)


def _parse_read(resp: Response) -> TagRead | KeepAlive | ReaderWarning | StatsRecord:
    if resp.status == NO_TAGS_FOUND:
        return _parse_keepalive(resp)
    if resp.status != SUCCESS:
        return ReaderWarning(resp.status)
    cur = Cursor(resp.data)
    header = _parse_header(cur)
    if header.response_type == RESPONSE_TYPE_STATUS:
        return StatsRecord(cur.rest())
    if header.response_type != RESPONSE_TYPE_TAG:
        raise FrameError(f"stream response type 0x{header.response_type:02X} not supported")
    read = decode_tag_read(cur, header.metadata_flags)
    cur.expect_end()
    return read


def _parse_reading_ack(resp: Response) -> ReadingStarted | ReadingStopped | ReaderWarning:
    if resp.status != SUCCESS:
        return ReaderWarning(resp.status)
    option = resp.data[:1]
    if option == bytes((TM_OPTION_CONTINUOUS_READING,)):
        return ReadingStarted()
    if option == bytes((TM_OPTION_STOP_READING,)):
        return ReadingStopped()
    raise FrameError(f"0x2F reply with option {option.hex() or 'missing'} not supported")


def parse_stream_message(resp: Response) -> StreamMessage:
    """Decode one frame received during a continuous read; FrameError if it makes no sense."""
    if resp.opcode == OPCODE_READ_TAG_ID_MULTIPLE:
        return _parse_read(resp)
    if resp.opcode == OPCODE_MULTI_PROTOCOL_TAG_OP:
        return _parse_reading_ack(resp)
    raise FrameError(f"opcode 0x{resp.opcode:02X} is not part of a read stream")


def encode_stream_record(
    read: TagRead,
    *,
    metadata_flags: int = 0x01FF,
    search_flags: int = 0x001B,
    multi_select: bool = False,
) -> Response:
    """The 0x22 frame a module streams for one read (defaults: SparkFun's start command)."""
    header = _stream_header(
        metadata_flags=metadata_flags, search_flags=search_flags, multi_select=multi_select
    )
    record = bytes((RESPONSE_TYPE_TAG,)) + encode_tag_read(read, metadata_flags)
    return Response(OPCODE_READ_TAG_ID_MULTIPLE, SUCCESS, header + record)


def encode_keepalive(
    timestamp_ms: int | None = None, *, search_flags: int = CAPTURED_KEEPALIVE_SEARCH_FLAGS
) -> Response:
    """``FF 00 22 04 00 84 E0``; with a timestamp, the newer multi-select form (data22_3)."""
    if timestamp_ms is None:
        return Response(OPCODE_READ_TAG_ID_MULTIPLE, NO_TAGS_FOUND)
    header = _stream_header(
        metadata_flags=METADATA_FLAG_TIMESTAMP, search_flags=search_flags, multi_select=True
    )
    stamp = encode_metadata(TagRead(b"", 0, timestamp_ms=timestamp_ms), METADATA_FLAG_TIMESTAMP)
    return Response(
        OPCODE_READ_TAG_ID_MULTIPLE, NO_TAGS_FOUND, header + bytes((RESPONSE_TYPE_TAG,)) + stamp
    )


def parse_tag_buffer(resp: Response) -> list[TagRead]:
    """Records of a GET_TAG_ID_BUFFER (0x29) reply: flags u16, read option u8, count u8, records."""
    if resp.opcode != OPCODE_GET_TAG_ID_BUFFER:
        raise FrameError(f"opcode 0x{resp.opcode:02X} is not a tag-buffer reply")
    if resp.status != SUCCESS:
        raise DeviceError(f"tag buffer read failed: {describe(resp.status)}", status=resp.status)
    cur = Cursor(resp.data)
    flags = cur.u16()
    cur.u8()  # read option echo
    reads = [decode_tag_read(cur, flags) for _ in range(cur.u8())]
    cur.expect_end()
    return reads


def parse_tag_count(resp: Response) -> int:
    """Tags a timed READ_TAG_ID_MULTIPLE found: option u8, search flags u16, count u32.

    Status 0x0400 (no tags found) is a count of zero, not an error.
    """
    if resp.opcode != OPCODE_READ_TAG_ID_MULTIPLE:
        raise FrameError(f"opcode 0x{resp.opcode:02X} is not a read reply")
    if resp.status == NO_TAGS_FOUND:
        return 0
    if resp.status != SUCCESS:
        raise DeviceError(f"timed read failed: {describe(resp.status)}", status=resp.status)
    cur = Cursor(resp.data)
    cur.take(3)  # option, search flags echo
    count = cur.uint(4)
    cur.expect_end()
    return count


def encode_tag_buffer(reads: list[TagRead], *, metadata_flags: int = 0x01FF) -> Response:
    """The 0x29 reply a module sends for ``reads`` (the simulator's side of a sync read)."""
    if len(reads) > 0xFF:
        raise EncodeError(f"{len(reads)} records do not fit one reply")
    head = pack_uint(metadata_flags, 2, "metadata_flags") + bytes((0, len(reads)))
    body = b"".join(encode_tag_read(read, metadata_flags) for read in reads)
    return Response(OPCODE_GET_TAG_ID_BUFFER, SUCCESS, head + body)
