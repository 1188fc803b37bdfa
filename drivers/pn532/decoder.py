"""Incremental PN532 frame decoders for both ends of the HSU link.

``Pn532Decoder`` is the host's: it accepts responses (TFI D5), ACK, NACK and the syntax-error
frame. ``Pn532CommandDecoder`` is the chip's, for the simulator: commands (TFI D4), ACK and
NACK, and it takes the HSU wake-up bytes (0x55) for what they are rather than for garbage.

How they recover:

* Runs of 0x00 before a start code are preamble or the last frame's postamble, whatever their
  length: dropped silently. Any other byte before a start code is garbage, dropped and counted
  in ``stats.discarded_bytes``.
* A length that fails its LCS, or a frame whose DCS does not add up -> ``stats.bad_checksum``;
  a LEN of 0, or over the firmware's 265 -> ``stats.bad_length``; a frame with the other
  direction's TFI or without a command code -> ``stats.malformed``. In each case only the
  start code's first byte is dropped and the search for ``00 FF`` resumes right after it, so a
  good frame hidden behind a corrupted length is still found.
* The postamble is not waited for: a frame is complete at its DCS, and a missing postamble
  proves nothing the checksums have not already shown.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final, assert_never

from drivers.buffer import BufferedDecoder
from drivers.pn532.frames import (
    MAX_FRAME_SIZE,
    START_CODE,
    TFI_HOST_TO_PN532,
    TFI_PN532_TO_HOST,
    Defect,
    Pn532Frame,
    parse_window,
)
from drivers.sentinel import NEED_DATA, NeedData

WAKEUP_BYTE: Final = 0x55
MAX_BUFFER: Final = 4096


class FrameScanner(BufferedDecoder):
    """The decoding loop shared by both ends; ``tfis`` says which direction it listens to."""

    def __init__(
        self,
        tfis: tuple[int, ...],
        filler: bytes = b"\x00",
        max_buffer: int = MAX_BUFFER,
    ) -> None:
        self._tfis = tfis
        self._filler = filler
        super().__init__(max_buffer)

    def pending(self) -> bytes:
        """Bytes received but not yet part of a frame (h11's ``trailing_data``)."""
        return bytes(self._buffer)

    def next_frame(self) -> Pn532Frame | NeedData:
        while self._skip_to_start_code():
            parsed = parse_window(self._buffer.peek(MAX_FRAME_SIZE), self._tfis)
            if parsed is None:
                return NEED_DATA
            if isinstance(parsed, Defect):
                self._count(parsed)
                self._buffer.discard(1)
            elif parsed.frame is None:
                self.stats.malformed += 1
                self._buffer.discard(parsed.size)
            else:
                self._buffer.take(parsed.size)
                self.stats.frames += 1
                return parsed.frame
        return NEED_DATA

    def frames(self) -> Iterator[Pn532Frame]:
        """Every complete frame buffered so far."""
        while (frame := self.next_frame()) is not NEED_DATA:
            yield frame

    def _count(self, bad: Defect) -> None:
        match bad:
            case Defect.CHECKSUM:
                self.stats.bad_checksum += 1
            case Defect.LENGTH:
                self.stats.bad_length += 1
            case _:
                assert_never(bad)

    def _skip_to_start_code(self) -> bool:
        """Drop what precedes the next start code; False if there is none yet."""
        at = self._buffer.find(START_CODE)
        if at < 0:
            # A trailing 0x00 may be the first half of a start code still on the wire.
            keep = 1 if len(self._buffer) and self._buffer.byte_at(-1) == 0 else 0
            self._drop(len(self._buffer) - keep)
            return False
        self._drop(at)
        return True

    def _drop(self, n: int) -> None:
        dropped = self._buffer.take(n)
        noise = len(dropped) - sum(dropped.count(f) for f in self._filler)
        self.stats.discarded_bytes += noise


class Pn532Decoder(FrameScanner):
    """Host side: frames from the PN532."""

    def __init__(self, max_buffer: int = MAX_BUFFER) -> None:
        super().__init__(tfis=(TFI_PN532_TO_HOST,), max_buffer=max_buffer)


class Pn532CommandDecoder(FrameScanner):
    """Chip side, for the simulator: frames from the host, wake-up bytes skipped."""

    def __init__(self, max_buffer: int = MAX_BUFFER) -> None:
        super().__init__(
            tfis=(TFI_HOST_TO_PN532,), filler=bytes([0x00, WAKEUP_BYTE]), max_buffer=max_buffer
        )
