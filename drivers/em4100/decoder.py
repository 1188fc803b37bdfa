"""Incremental EM4100 decoder: bytes from the reader in, card reads out.

How it recovers (the pymodbus RTU framer docstring lists the same things):

* Bytes before an STX are garbage: dropped and counted in ``stats.discarded_bytes``.
* A candidate frame is checked byte by byte as it arrives, so a broken one is rejected as soon
  as its first wrong byte is seen, not after a timeout that a sans-I/O decoder does not have:

  - a non-hex character among the 12 hex positions -> ``stats.malformed`` (the real bad frame of
    ESPHome issue #3610 has a ``<`` there); an STX there instead means the frame was cut short
    and a new one starts -> ``stats.bad_length``;
  - byte 13 neither ETX (RDM6300) nor CR (ID-12), or a CR not followed by LF ETX -> missing ETX,
    counted in ``stats.bad_length``;
  - a complete frame whose XOR does not match -> ``stats.bad_checksum``.

  Either way the decoder drops bytes up to the next STX after the bad frame's own and carries on.
* Lower-case hex is accepted (some libraries emit it; the readers themselves send upper case).

Repeats: an RDM6300 sends the same frame over and over while a card stays in the field
(arduino12/rdm6300 issue #14; the exact period is unconfirmed, under 220 ms). Every repeat is
returned as a frame of its own; deduplication and debouncing belong to the gateway pipeline,
which also needs the repeats to know that the card is still there.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from typing import Final, assert_never

from drivers.buffer import BufferedDecoder
from drivers.em4100.frames import (
    CR,
    ETX,
    HEX_DIGITS,
    HEX_END,
    ID12_PACKET_SIZE,
    LF,
    RDM6300_PACKET_SIZE,
    STX,
    Em4100Frame,
    checksum,
)
from drivers.sentinel import NEED_DATA, NeedData

# Frames are at most 16 bytes and garbage is dropped as soon as it is seen, so the buffer only
# grows when the caller stops pulling frames; a few hundred queued reads are plenty.
MAX_BUFFER: Final = 4096
_STX_BYTES: Final = bytes([STX])


class _Verdict(enum.Enum):
    INCOMPLETE = enum.auto()
    RDM6300 = enum.auto()
    ID12 = enum.auto()
    NON_HEX = enum.auto()
    TRUNCATED = enum.auto()
    NO_ETX = enum.auto()


def _scan(candidate: bytes) -> _Verdict:
    """Judge the bytes of a candidate frame that has arrived so far (``candidate[0]`` is STX)."""
    for i in range(1, min(len(candidate), HEX_END)):
        if candidate[i] not in HEX_DIGITS:
            return _Verdict.TRUNCATED if candidate[i] == STX else _Verdict.NON_HEX
    return _scan_trailer(candidate[HEX_END:])


def _scan_trailer(trailer: bytes) -> _Verdict:
    if not trailer:
        return _Verdict.INCOMPLETE
    if trailer[0] == ETX:
        return _Verdict.RDM6300
    expected = bytes([CR, LF, ETX])
    if trailer[: len(expected)] != expected[: len(trailer)]:
        return _Verdict.NO_ETX
    return _Verdict.ID12 if len(trailer) >= len(expected) else _Verdict.INCOMPLETE


class Em4100Decoder(BufferedDecoder):
    def __init__(self, max_buffer: int = MAX_BUFFER) -> None:
        super().__init__(max_buffer)

    def next_frame(self) -> Em4100Frame | NeedData:
        buffer = self._buffer
        while buffer.discard_until(_STX_BYTES, start=0):
            verdict = _scan(buffer.peek(ID12_PACKET_SIZE))
            match verdict:
                case _Verdict.INCOMPLETE:
                    return NEED_DATA
                case _Verdict.RDM6300 | _Verdict.ID12:
                    frame = self._accept(verdict)
                    if frame is not None:
                        return frame
                case _Verdict.NON_HEX:
                    buffer.stats.malformed += 1
                    self._resync()
                case _Verdict.TRUNCATED | _Verdict.NO_ETX:
                    buffer.stats.bad_length += 1
                    self._resync()
                case _:
                    assert_never(verdict)
        return NEED_DATA

    def frames(self) -> Iterator[Em4100Frame]:
        """Every complete frame buffered so far."""
        while (frame := self.next_frame()) is not NEED_DATA:
            yield frame

    def _accept(self, verdict: _Verdict) -> Em4100Frame | None:
        size = RDM6300_PACKET_SIZE if verdict is _Verdict.RDM6300 else ID12_PACKET_SIZE
        raw = bytes.fromhex(self._buffer.peek(HEX_END - 1, start=1).decode("ascii"))
        if checksum(raw[:5]) != raw[5]:
            self._buffer.stats.bad_checksum += 1
            self._resync()
            return None
        self._buffer.take(size)
        self._buffer.stats.frames += 1
        return Em4100Frame(version=raw[0], tag_id=int.from_bytes(raw[1:5], "big"))

    def _resync(self) -> None:
        self._buffer.discard_until(_STX_BYTES, start=1)
