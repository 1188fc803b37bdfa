"""Incremental, resynchronising frame decoders for the ThingMagic serial link (h11 style).

``receive_data`` only buffers; ``next_frame`` returns one frame or ``NEED_DATA``. Nothing here
raises on wire input, whatever it is. How a frame is found:

1. Drop everything before the next 0xFF (counted as discarded bytes).
2. A LEN above 0xF8 cannot start a frame (mercuryapi's limit): count a bad length, drop the 0xFF
   and search again.
3. Wait until LEN + overhead bytes are buffered, then check the CRC. 0xFF also occurs *inside*
   frames (the metadata flags ``01 FF`` are in every streamed tag read), so a 0xFF is only a
   candidate: on a bad CRC count it, drop that one byte and search from the next 0xFF. A real
   frame that started inside the rejected candidate is still found that way.

The buffer is bounded (``drivers.buffer.ReceiveBuffer``): a port that streams garbage costs at
most ``max_size`` bytes. A candidate whose LEN promises more bytes than ever arrive holds the
frames behind it until enough bytes follow to rule it out, at most 255 bytes later.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final, Generic, TypeVar

from drivers.buffer import DEFAULT_MAX_SIZE, BufferedDecoder
from drivers.sentinel import NEED_DATA, NeedData
from drivers.thingmagic.frames import (
    MAX_DATA_LEN,
    REQUEST_OVERHEAD,
    RESPONSE_OVERHEAD,
    SOF,
    Request,
    Response,
    crc_matches,
)

_SOF_BYTES: Final = bytes((SOF,))
F = TypeVar("F", Request, Response)


class _FrameDecoder(BufferedDecoder, Generic[F]):
    _overhead: int

    def __init__(self, *, max_size: int = DEFAULT_MAX_SIZE) -> None:
        super().__init__(max_size)

    def next_frame(self) -> F | NeedData:
        buf = self._buffer
        while True:
            if not buf.discard_until(_SOF_BYTES, start=0) or len(buf) < 2:
                return NEED_DATA
            length = buf.byte_at(1)
            if length > MAX_DATA_LEN:
                buf.stats.bad_length += 1
                buf.discard_until(_SOF_BYTES, start=1)
                continue
            total = length + self._overhead
            if len(buf) < total:
                return NEED_DATA
            raw = buf.peek(total)
            if not crc_matches(raw):
                buf.stats.bad_checksum += 1
                buf.discard_until(_SOF_BYTES, start=1)
                continue
            buf.take(total)
            buf.stats.frames += 1
            return self._build(raw)

    def frames(self) -> Iterator[F]:
        """Every complete frame buffered so far."""
        while (frame := self.next_frame()) is not NEED_DATA:
            yield frame

    def _build(self, raw: bytes) -> F:
        raise NotImplementedError


class ResponseDecoder(_FrameDecoder[Response]):
    """Frames the module sends: replies, streamed tag reads, keep-alives."""

    _overhead = RESPONSE_OVERHEAD

    def _build(self, raw: bytes) -> Response:
        return Response.from_checked_bytes(raw)


class RequestDecoder(_FrameDecoder[Request]):
    """Frames the host sends: what the simulated module reads."""

    _overhead = REQUEST_OVERHEAD

    def _build(self, raw: bytes) -> Request:
        return Request.from_checked_bytes(raw)
