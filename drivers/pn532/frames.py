"""PN532 host-interface frames (NXP UM0701-02 section 6.2; docs/drivers/pn532.md section 3.1).

Four kinds of frame travel on the HSU link, all behind the same start code::

    information  00 | 00 FF | LEN | LCS | TFI PD0 .. PDn | DCS | 00
    extended     00 | 00 FF | FF FF | LENM LENL | LCS | TFI PD0 .. PDn | DCS | 00
    ACK          00 | 00 FF | 00 FF | 00
    NACK         00 | 00 FF | FF 00 | 00
    error        00 | 00 FF | 01 FF | 7F | 81 | 00      (syntax error, from the PN532)

``LEN`` counts TFI and data; ``(LEN + LCS) & 0xFF == 0`` (extended: ``LENM + LENL + LCS``);
``(TFI + PD0 + .. + PDn + DCS) & 0xFF == 0``. Preamble and postamble "can be composed with an
undetermined number of bytes", so a parser skips any run of 0x00 before the start code and
never requires the postamble. Cross-checked against libnfc ``libnfc/drivers/pn532_uart.c``
(``pn532_uart_receive``: the 01 FF error frame, FF FF extended frame, LCS and DCS checks).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from drivers.errors import EncodeError, FrameError

PREAMBLE: Final = 0x00
POSTAMBLE: Final = 0x00
START_CODE: Final = b"\x00\xff"
TFI_HOST_TO_PN532: Final = 0xD4
TFI_PN532_TO_HOST: Final = 0xD5
TFI_ERROR: Final = 0x7F  # the byte in the TFI position of the syntax-error frame
NORMAL_FRAME_MAX_LEN: Final = 255  # TFI + data
EXTENDED_FRAME_MAX_LEN: Final = 265  # TFI + 264 data bytes, the firmware's limit
EXTENDED_MARKER: Final = b"\xff\xff"

ACK_FRAME: Final = b"\x00\x00\xff\x00\xff\x00"
NACK_FRAME: Final = b"\x00\x00\xff\xff\x00\x00"
ERROR_FRAME: Final = b"\x00\x00\xff\x01\xff\x7f\x81\x00"


def lcs(length: int) -> int:
    """Length checksum of a normal frame, or of LENM + LENL for an extended one."""
    return (-((length >> 8) + (length & 0xFF))) & 0xFF


def dcs(tfi_and_data: bytes) -> int:
    return (-sum(tfi_and_data)) & 0xFF


@dataclass(frozen=True, slots=True)
class Ack:
    """The chip has the command and is running it; from the host, it aborts a pending command."""

    def to_bytes(self) -> bytes:
        return ACK_FRAME


@dataclass(frozen=True, slots=True)
class Nack:
    """The last frame was not received well: send it again."""

    def to_bytes(self) -> bytes:
        return NACK_FRAME


@dataclass(frozen=True, slots=True)
class ErrorFrame:
    """Application-level error: the PN532 could not make sense of the command it received."""

    def to_bytes(self) -> bytes:
        return ERROR_FRAME


@dataclass(frozen=True, slots=True)
class InformationFrame:
    """A command (TFI D4, host to PN532) or its response (TFI D5, code = command + 1).

    ``code`` is PD0, ``params`` PD1..PDn. ``to_bytes`` uses the normal frame up to 255 bytes of
    TFI and data and the extended frame above, as the PN532 itself does.
    """

    tfi: int
    code: int
    params: bytes = b""

    def __post_init__(self) -> None:
        if self.tfi not in (TFI_HOST_TO_PN532, TFI_PN532_TO_HOST):
            raise EncodeError(f"PN532 TFI must be D4 or D5, not {self.tfi:#x}")
        if not 0 <= self.code <= 0xFF:
            raise EncodeError(f"PN532 command code out of range: {self.code!r}")
        if 2 + len(self.params) > EXTENDED_FRAME_MAX_LEN:
            raise EncodeError(f"PN532 frame data too long: {len(self.params) + 1} bytes")

    @property
    def body(self) -> bytes:
        """TFI and data: what LEN counts and DCS covers."""
        return bytes([self.tfi, self.code]) + self.params

    def to_bytes(self) -> bytes:
        body = self.body
        n = len(body)
        if n <= NORMAL_FRAME_MAX_LEN:
            header = bytes([n, lcs(n)])
        else:
            header = EXTENDED_MARKER + bytes([n >> 8, n & 0xFF, lcs(n)])
        return b"\x00" + START_CODE + header + body + bytes([dcs(body), POSTAMBLE])

    @classmethod
    def from_bytes(cls, data: bytes) -> InformationFrame:
        frame = parse_frame(data)
        if not isinstance(frame, InformationFrame):
            raise FrameError(f"not an information frame: {data.hex(' ')}")
        return frame


Pn532Frame = Ack | Nack | ErrorFrame | InformationFrame

MAX_FRAME_SIZE: Final = 7 + EXTENDED_FRAME_MAX_LEN + 1  # 00 FF FF FF LENM LENL LCS, body, DCS
_SHORT_FRAMES: Final[dict[bytes, Pn532Frame]] = {b"\x00\xff": Ack(), b"\xff\x00": Nack()}


class Defect(enum.Enum):
    CHECKSUM = enum.auto()
    LENGTH = enum.auto()


@dataclass(frozen=True, slots=True)
class Parsed:
    """A frame whose LCS and DCS hold; ``frame`` is None if its content makes no sense to the
    listening end (a TFI for the other direction, no command code). Its checksums make its
    boundaries trustworthy, so the whole of it can be skipped."""

    frame: Pn532Frame | None
    size: int  # bytes from the start code through DCS


def _header(window: bytes) -> tuple[int, int] | Defect | None:
    """(LEN, header size) of the frame in ``window``; None while incomplete."""
    if window[2:4] == EXTENDED_MARKER:
        if len(window) < 7:
            return None
        length, start, check = (window[4] << 8) | window[5], 7, window[4] + window[5] + window[6]
    else:
        length, start, check = window[2], 4, window[2] + window[3]
    if check & 0xFF:
        return Defect.CHECKSUM
    if not 1 <= length <= EXTENDED_FRAME_MAX_LEN:
        return Defect.LENGTH
    return length, start


def _body_to_frame(body: bytes, tfis: tuple[int, ...]) -> Pn532Frame | None:
    if body == bytes([TFI_ERROR]) and TFI_PN532_TO_HOST in tfis:
        return ErrorFrame()
    if len(body) < 2 or body[0] not in tfis:
        return None
    return InformationFrame(tfi=body[0], code=body[1], params=body[2:])


def parse_window(window: bytes, tfis: tuple[int, ...]) -> Parsed | Defect | None:
    """Judge the frame whose start code opens ``window``; None while more bytes are needed.

    ``tfis`` are the frame identifiers the listening end accepts (D5 for the host, D4 for the
    chip); a frame with another has ``Parsed.frame`` None.
    """
    if len(window) < 4:
        return None
    if window[2:4] in _SHORT_FRAMES:
        return Parsed(_SHORT_FRAMES[window[2:4]], 4)
    header = _header(window)
    if header is None or isinstance(header, Defect):
        return header
    length, start = header
    end = start + length
    if len(window) <= end:
        return None
    body = window[start:end]
    if (sum(body) + window[end]) & 0xFF:
        return Defect.CHECKSUM
    return Parsed(_body_to_frame(body, tfis), end + 1)


def parse_frame(data: bytes) -> Pn532Frame:
    """Parse exactly one frame of either direction, with any preamble and postamble of 0x00."""
    start = len(data) - len(data.lstrip(b"\x00")) - 1
    if start < 0 or data[start : start + 2] != START_CODE:
        raise FrameError(f"no PN532 start code after the preamble: {data.hex(' ')}")
    parsed = parse_window(data[start:], (TFI_HOST_TO_PN532, TFI_PN532_TO_HOST))
    if not isinstance(parsed, Parsed) or data[start + parsed.size :].strip(b"\x00"):
        raise FrameError(f"not one valid PN532 frame: {data.hex(' ')}")
    if parsed.frame is None:
        raise FrameError(f"PN532 frame without TFI and command code: {data.hex(' ')}")
    return parsed.frame
