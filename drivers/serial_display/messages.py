"""Commands and replies carried in display frames (docs/protocols/serial-display.md, section 3).

``encode`` turns a message into a frame with the caller's sequence number. ``parse_command`` and
``parse_reply`` go the other way; a frame whose CRC was good but whose content is not a valid
message raises ``InvalidMessageError`` carrying the NAK code a display answers with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, TypeAlias, assert_never

from drivers.errors import EncodeError, FrameError
from drivers.serial_display.frames import MAX_PAYLOAD, ErrorCode, Frame, FrameType

FOREVER: Final = 0  # duration_s meaning "until replaced or cleared"
ALL_LINES: Final = 0xFF
MAX_BRIGHTNESS: Final = 100
SHOW_TEXT_HEADER: Final = 3  # line (u8) + duration_s (u16 big-endian)
MAX_TEXT: Final = MAX_PAYLOAD - SHOW_TEXT_HEADER


class InvalidMessageError(FrameError):
    """A well-framed message with invalid content; ``code`` is what the display NAKs with."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Ping:
    """Payload: none. Answered by ACK; the host's liveness check."""


@dataclass(frozen=True, slots=True)
class ShowText:
    """Payload: ``line u8 | duration_s u16 BE | text UTF-8 (0..247 bytes)``.

    ``duration_s`` 0 keeps the text until it is replaced or cleared.
    """

    line: int
    text: str
    duration_s: int = FOREVER

    def __post_init__(self) -> None:
        if not 0 <= self.line < ALL_LINES:
            raise EncodeError(f"line {self.line} outside 0..{ALL_LINES - 1}")
        if not 0 <= self.duration_s <= 0xFFFF:
            raise EncodeError(f"duration {self.duration_s} s outside 0..65535")
        if len(self.text.encode("utf-8")) > MAX_TEXT:
            raise EncodeError(f"text longer than {MAX_TEXT} UTF-8 bytes")


@dataclass(frozen=True, slots=True)
class Clear:
    """Payload: ``line u8``; 0xFF clears every line."""

    line: int = ALL_LINES

    def __post_init__(self) -> None:
        if not 0 <= self.line <= ALL_LINES:
            raise EncodeError(f"line {self.line} outside 0..{ALL_LINES}")


@dataclass(frozen=True, slots=True)
class SetBrightness:
    """Payload: ``percent u8`` (0..100)."""

    percent: int

    def __post_init__(self) -> None:
        if not 0 <= self.percent <= MAX_BRIGHTNESS:
            raise EncodeError(f"brightness {self.percent} outside 0..{MAX_BRIGHTNESS}")


@dataclass(frozen=True, slots=True)
class Ack:
    """Payload: none. ``seq`` is that of the frame acknowledged."""

    seq: int


@dataclass(frozen=True, slots=True)
class Nak:
    """Payload: ``code u8``. ``seq`` is that of the frame refused; it was not executed."""

    seq: int
    code: ErrorCode


Command: TypeAlias = Ping | ShowText | Clear | SetBrightness
Reply: TypeAlias = Ack | Nak


def encode(message: Command, seq: int) -> Frame:
    match message:
        case Ping():
            return Frame(seq, FrameType.PING)
        case ShowText(line, text, duration_s):
            head = bytes([line]) + duration_s.to_bytes(2, "big")
            return Frame(seq, FrameType.SHOW_TEXT, head + text.encode("utf-8"))
        case Clear(line):
            return Frame(seq, FrameType.CLEAR, bytes([line]))
        case SetBrightness(percent):
            return Frame(seq, FrameType.BRIGHTNESS, bytes([percent]))
        case _:
            assert_never(message)


def encode_reply(reply: Reply) -> Frame:
    match reply:
        case Ack(seq):
            return Frame(seq, FrameType.ACK)
        case Nak(seq, code):
            return Frame(seq, FrameType.NAK, bytes([code]))
        case _:
            assert_never(reply)


def _expect_length(frame: Frame, *allowed: int) -> None:
    if len(frame.payload) not in allowed:
        raise InvalidMessageError(
            ErrorCode.BAD_LENGTH, f"type {frame.type:#04x}: {len(frame.payload)} bytes"
        )


def _parse_show_text(payload: bytes) -> ShowText:
    try:
        text = payload[SHOW_TEXT_HEADER:].decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidMessageError(ErrorCode.BAD_TEXT, "text is not UTF-8") from e
    if payload[0] == ALL_LINES:
        raise InvalidMessageError(ErrorCode.BAD_LINE, "SHOW_TEXT cannot address all lines")
    return ShowText(payload[0], text, int.from_bytes(payload[1:3], "big"))


def parse_command(frame: Frame) -> Command:
    match frame.type:
        case FrameType.PING:
            _expect_length(frame, 0)
            return Ping()
        case FrameType.SHOW_TEXT:
            if len(frame.payload) < SHOW_TEXT_HEADER:
                _expect_length(frame, SHOW_TEXT_HEADER)
            return _parse_show_text(frame.payload)
        case FrameType.CLEAR:
            _expect_length(frame, 1)
            return Clear(frame.payload[0])
        case FrameType.BRIGHTNESS:
            _expect_length(frame, 1)
            if frame.payload[0] > MAX_BRIGHTNESS:
                raise InvalidMessageError(ErrorCode.BAD_VALUE, f"brightness {frame.payload[0]}")
            return SetBrightness(frame.payload[0])
        case _:
            raise InvalidMessageError(
                ErrorCode.UNKNOWN_TYPE, f"unknown command type {frame.type:#04x}"
            )


def parse_reply(frame: Frame) -> Reply:
    match frame.type:
        case FrameType.ACK:
            _expect_length(frame, 0)
            return Ack(frame.seq)
        case FrameType.NAK:
            _expect_length(frame, 1)
            try:
                return Nak(frame.seq, ErrorCode(frame.payload[0]))
            except ValueError as e:
                raise InvalidMessageError(
                    ErrorCode.BAD_VALUE, f"NAK code {frame.payload[0]}"
                ) from e
        case _:
            raise InvalidMessageError(
                ErrorCode.UNKNOWN_TYPE, f"unknown reply type {frame.type:#04x}"
            )
