"""The data of the PN532 responses a card-reading host needs, both ways (docs/drivers/pn532.md
3.2, 3.3).

``from_params`` parses the PD1..PDn of a response frame (after D5 and the response code) and
raises ``FrameError`` when they do not make sense; ``to_params`` is its inverse, which the
simulator uses to answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from drivers.errors import EncodeError, FrameError

UID_LENGTHS: Final = (4, 7, 10)  # single, double and triple size NFCID1
SEL_RES_ISO14443_4: Final = 0x20  # SAK bit: the target speaks ISO/IEC 14443-4 and sends an ATS


@dataclass(frozen=True, slots=True)
class FirmwareVersion:
    """GetFirmwareVersion response: ``IC Ver Rev Support``; ``32 01 06 07`` is a PN532 v1.6."""

    ic: int
    ver: int
    rev: int
    support: int

    @property
    def name(self) -> str:
        return f"PN5{self.ic:02x} v{self.ver}.{self.rev}"

    def to_params(self) -> bytes:
        return bytes([self.ic, self.ver, self.rev, self.support])

    @classmethod
    def from_params(cls, params: bytes) -> FirmwareVersion:
        if len(params) != 4:
            raise FrameError(f"GetFirmwareVersion response of {len(params)} bytes, expected 4")
        return cls(*params)


PN532_V1_6: Final = FirmwareVersion(ic=0x32, ver=0x01, rev=0x06, support=0x07)


@dataclass(frozen=True, slots=True)
class TypeATarget:
    """One ISO14443A target in an InListPassiveTarget response at 106 kbps::

        Tg | SENS_RES (ATQA, 2) | SEL_RES (SAK, 1) | NFCIDLength | NFCID1 ... | [ATS ...]

    The ATS may follow only when SAK has bit 0x20 (the chip sends RATS itself unless the host
    turned fAutomaticRATS off with SetParameters, as nfcpy does; then it is absent, so it is
    read when bytes remain). Its first byte, TL, counts itself.
    Layout from libnfc PR #739 (``01 01 00 04 08 04 1a da 74 44``) and nfcpy's tests.
    """

    tg: int
    atqa: bytes
    sak: int
    uid: bytes
    ats: bytes = b""

    def __post_init__(self) -> None:
        if len(self.uid) not in UID_LENGTHS:
            raise EncodeError(f"a type A UID has 4, 7 or 10 bytes, not {len(self.uid)}")
        if len(self.atqa) != 2 or not 0 <= self.sak <= 0xFF or not 0 <= self.tg <= 0xFF:
            raise EncodeError("ATQA is 2 bytes, SAK and Tg one byte each")
        if self.ats and not self.sak & SEL_RES_ISO14443_4:
            raise EncodeError("an ATS comes only from a target with SAK bit 0x20")
        if self.ats and self.ats[0] != len(self.ats):
            raise EncodeError("the ATS's first byte (TL) is its length, itself included")

    @property
    def raw_id(self) -> str:
        """The UID in upper-case hex: the card's raw id in docs/contract.md, "Events"."""
        return self.uid.hex().upper()

    def to_bytes(self) -> bytes:
        head = bytes([self.tg]) + self.atqa + bytes([self.sak, len(self.uid)])
        return head + self.uid + self.ats

    @classmethod
    def from_view(cls, data: bytes, at: int) -> tuple[TypeATarget, int]:
        """Parse the target starting at ``data[at]``; return it and where the next one starts."""
        if len(data) < at + 5:
            raise FrameError("InListPassiveTarget response cut short in a target header")
        tg, atqa, sak, uid_len = data[at], data[at + 1 : at + 3], data[at + 3], data[at + 4]
        end = at + 5 + uid_len
        uid = data[at + 5 : end]
        ats = b""
        if sak & SEL_RES_ISO14443_4 and len(data) > end:
            ats = data[end : end + data[end]]
            end += data[end]
        if len(data) < end:
            raise FrameError("InListPassiveTarget response cut short in a UID or ATS")
        try:
            return cls(tg=tg, atqa=atqa, sak=sak, uid=uid, ats=ats), end
        except EncodeError as e:
            raise FrameError(f"InListPassiveTarget target does not make sense: {e}") from e


@dataclass(frozen=True, slots=True)
class InListPassiveTargetResponse:
    """``NbTg`` then NbTg targets; NbTg = 0 means no card answered within MaxRetries."""

    targets: tuple[TypeATarget, ...] = ()

    def to_params(self) -> bytes:
        return bytes([len(self.targets)]) + b"".join(t.to_bytes() for t in self.targets)

    @classmethod
    def from_params(cls, params: bytes) -> InListPassiveTargetResponse:
        if not params or params[0] > 2:
            raise FrameError(f"InListPassiveTarget response with NbTg {params[:1].hex()}")
        targets: list[TypeATarget] = []
        at = 1
        for _ in range(params[0]):
            target, at = TypeATarget.from_view(params, at)
            targets.append(target)
        if at != len(params):
            raise FrameError("InListPassiveTarget response has bytes after its last target")
        return cls(tuple(targets))
