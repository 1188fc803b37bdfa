"""Read commands as the simulated module parses them, and its tag buffer
(docs/drivers/thingmagic.md 1.8-1.10).

The start command of a continuous read, as SparkFun sends it and the driver builds it::

    timeout u16 | 01 | 22 | multi-protocol flags u16 | protocol 05 | PLEN |
      22 | option (0x10: metadata) | search flags u16 | on-time u16 | [off-time u16] | metadata

The off-time is there only when the search flags ask for duty-cycle control (0x0400). A timed
read is ``22 | option | search flags u16 | timeout u16``; its reads go to the tag buffer, which
keeps one entry per tag and antenna and counts repeats in the read count, FIFO, until 0x2A.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

from drivers.thingmagic import commands as cmd
from drivers.thingmagic import status
from drivers.thingmagic.frames import Request, Response
from drivers.thingmagic.records import TagRead, encode_tag_buffer

START_HEAD_LEN: Final = 9  # bytes before the embedded command's option byte
MAX_READ_COUNT: Final = 0xFF  # the read count is one byte


@dataclass(frozen=True, slots=True)
class ReadPlan:
    cycle_s: float  # on-time of one search cycle; a keep-alive closes each
    off_s: float
    search_flags: int
    metadata_flags: int


def parse_start_read(data: bytes) -> ReadPlan | None:
    """The plan of a 0x2F start command, or None if it is not one this module runs."""
    if len(data) < START_HEAD_LEN + 5:
        return None
    option, sub, protocol, plen, embedded = data[2], data[3], data[6], data[7], data[8]
    if (option, sub, protocol, embedded) != (
        cmd.TM_OPTION_CONTINUOUS_READING,
        cmd.OPCODE_READ_TAG_ID_MULTIPLE,
        cmd.TAG_PROTOCOL_GEN2,
        cmd.OPCODE_READ_TAG_ID_MULTIPLE,
    ) or plen != len(data) - START_HEAD_LEN:
        return None
    body = data[START_HEAD_LEN:]
    singulation, search_flags = body[0], int.from_bytes(body[1:3], "big")
    on_ms, at = int.from_bytes(body[3:5], "big"), 5
    off_ms = 0
    if search_flags & cmd.SEARCH_FLAG_DUTY_CYCLE_CONTROL:
        off_ms, at = int.from_bytes(body[5:7], "big"), 7
    metadata = 0
    if singulation & cmd.SINGULATION_OPTION_FLAG_METADATA:
        metadata, at = int.from_bytes(body[at : at + 2], "big"), at + 2
    if at != len(body) or on_ms == 0:
        return None
    return ReadPlan(on_ms / 1000, off_ms / 1000, search_flags, metadata)


@dataclass(frozen=True, slots=True)
class TimedRead:
    option: int
    search_flags: int
    timeout_ms: int

    def reply_data(self, count: int) -> bytes:
        # "FF 07 22 00 00 00 00 13 00 00 00 01": option, flags, tag count u32
        return bytes((self.option,)) + self.search_flags.to_bytes(2, "big") + count.to_bytes(4)


def parse_timed_read(data: bytes) -> TimedRead | None:
    if len(data) != 5:
        return None
    return TimedRead(data[0], int.from_bytes(data[1:3], "big"), int.from_bytes(data[3:5], "big"))


class TagBuffer:
    """Unique (EPC, antenna) entries in arrival order; GET_TAG_ID_BUFFER pages through them."""

    def __init__(self) -> None:
        self._entries: dict[tuple[bytes, int], TagRead] = {}
        self._cursor = 0

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()
        self._cursor = 0

    def add(self, reads: list[TagRead]) -> None:
        for read in reads:
            key = (read.epc, read.antenna)
            seen = self._entries.get(key)
            if seen is None:
                self._entries[key] = read
                continue
            louder = (read.rssi_dbm or -128) > (seen.rssi_dbm or -128)
            count = min(seen.read_count + 1, MAX_READ_COUNT)
            self._entries[key] = replace(read if louder else seen, read_count=count)

    def reply(self, request: Request, max_data: int) -> Response:
        """The next records that fit one frame (``metadata u16 | read option`` in the request)."""
        if len(request.data) != 3:
            return Response(request.opcode, status.MSG_WRONG_NUMBER_OF_DATA)
        flags = int.from_bytes(request.data[:2], "big")
        pending = list(self._entries.values())[self._cursor :]
        if not pending:
            return Response(request.opcode, status.TAG_ID_BUFFER_NOT_ENOUGH_TAGS_AVAILABLE)
        take = 1
        while (
            take < len(pending)
            and len(encode_tag_buffer(pending[: take + 1], metadata_flags=flags).data) <= max_data
        ):
            take += 1
        self._cursor += take
        return encode_tag_buffer(pending[:take], metadata_flags=flags)
