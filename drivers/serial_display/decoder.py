"""Serial-display decoders: bytes in any chunking -> frames, replies or commands out.

``FrameDecoder`` does the framing for both ends. Resync rule: skip to the next SOF; a length
byte above ``MAX_PAYLOAD`` or a CRC mismatch costs that one SOF byte, and the search restarts
right after it, because a real frame may begin inside the rejected bytes. A false SOF whose
length byte is plausible holds the decoder until that many bytes have arrived; the CRC then
fails and the bytes are searched again, so nothing valid is lost, only delayed. The decoder has
no clock: a caller that sees the line go quiet calls ``give_up_partial`` to stop waiting.

``ReplyDecoder`` (the gateway's side) and ``CommandDecoder`` (the display's side) add the message
layer. A reply that does not parse is counted as malformed and skipped; a command that does not
parse comes out as ``Refused`` so that the display can NAK it with the right code.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.buffer import BufferedDecoder, DecoderStats
from drivers.errors import FrameError
from drivers.sentinel import NEED_DATA, NeedData
from drivers.serial_display.frames import MAX_PAYLOAD, MIN_FRAME, SOF, ErrorCode, Frame
from drivers.serial_display.messages import (
    Command,
    InvalidMessageError,
    Reply,
    parse_command,
    parse_reply,
)

_SOF_BYTES = bytes([SOF])
DEFAULT_MAX_BUFFER = 4096  # a dozen full frames; a display link never has more in flight


class FrameDecoder(BufferedDecoder):
    def __init__(self, max_size: int = DEFAULT_MAX_BUFFER) -> None:
        super().__init__(max_size)

    def next_frame(self) -> Frame | NeedData:
        buf = self._buffer
        while buf.discard_until(_SOF_BYTES, start=0):
            if len(buf) < 2:
                return NEED_DATA
            length = buf.byte_at(1)
            if length > MAX_PAYLOAD:
                buf.stats.bad_length += 1
                buf.discard(1)
                continue
            total = length + MIN_FRAME
            if len(buf) < total:
                return NEED_DATA
            try:
                frame = Frame.from_bytes(buf.peek(total))
            except FrameError:
                buf.stats.bad_checksum += 1
                buf.discard(1)
                continue
            buf.take(total)
            buf.stats.frames += 1
            return frame
        return NEED_DATA

    def give_up_partial(self) -> None:
        """The line went quiet mid-frame (spec 2, step 4): drop its SOF and search past it."""
        if len(self._buffer):
            self._buffer.stats.bad_length += 1
            self._buffer.discard(1)


class _MessageDecoder:
    """Both ends' message layer over one ``FrameDecoder``: the input and the counters are the
    framing's; subclasses add ``next_frame``, which parses what the framing lets through."""

    def __init__(self, max_size: int = DEFAULT_MAX_BUFFER) -> None:
        self._frames = FrameDecoder(max_size)

    @property
    def stats(self) -> DecoderStats:
        return self._frames.stats

    def receive_data(self, data: bytes) -> None:
        self._frames.receive_data(data)

    def give_up_partial(self) -> None:
        self._frames.give_up_partial()


class ReplyDecoder(_MessageDecoder):
    """Gateway side: ACK / NAK frames from the display."""

    def next_frame(self) -> Reply | NeedData:
        while (frame := self._frames.next_frame()) is not NEED_DATA:
            try:
                return parse_reply(frame)
            except InvalidMessageError:
                self.stats.malformed += 1
        return NEED_DATA


@dataclass(frozen=True, slots=True)
class Received:
    seq: int
    command: Command


@dataclass(frozen=True, slots=True)
class Refused:
    """A frame with a good CRC that the display must NAK with ``code``."""

    seq: int
    code: ErrorCode


class CommandDecoder(_MessageDecoder):
    """Display side: command frames from the gateway."""

    def next_frame(self) -> Received | Refused | NeedData:
        frame = self._frames.next_frame()
        if frame is NEED_DATA:
            return NEED_DATA
        try:
            return Received(frame.seq, parse_command(frame))
        except InvalidMessageError as e:
            self.stats.malformed += 1
            return Refused(frame.seq, e.code)
