"""One tag record: the metadata fields and the EPC block (docs/drivers/thingmagic.md 1.9).

Both streamed reads (opcode 0x22) and tag-buffer replies (0x29) carry the same record. Which
metadata fields are present is given by a 16-bit flags word sent once per frame; the fields then
follow in flag-bit order (mercuryapi ``TMR_SR_parseMetadataOnly``), and the EPC block closes the
record (``TMR_SR_parseMetadataFromMessage``)::

    [READCOUNT u8] [RSSI s8] [ANTENNAID u8: TX<<4 | RX] [FREQUENCY u24 kHz] [TIMESTAMP u32 ms]
    [PHASE u16] [PROTOCOL u8] [DATA u16 bits + bytes] [GPIO u8]
    [GEN2_Q u8] [GEN2_LF u8] [GEN2_TARGET u8]    (Gen2 only) [BRAND_ID 2 bytes] [TAGTYPE EBV]
    EPC block: u16 bits | PC u16 (Gen2) [XPC_W1 [XPC_W2]] | EPC | tag CRC u16 (not on ATA)

Fields absent from the flags decode to None (read_count to 1, data to b"", ports to 1). Gen2 Q,
link frequency, target, brand id and tag type are skipped on decode and written as zeros.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Final

from drivers.errors import EncodeError, FrameError
from drivers.thingmagic.codec import Cursor, pack_uint
from drivers.thingmagic.commands import TAG_PROTOCOL_ATA, TAG_PROTOCOL_GEN2
from drivers.thingmagic.crc import gen2_crc16

METADATA_FLAG_READCOUNT: Final = 0x0001
METADATA_FLAG_RSSI: Final = 0x0002
METADATA_FLAG_ANTENNAID: Final = 0x0004
METADATA_FLAG_FREQUENCY: Final = 0x0008
METADATA_FLAG_TIMESTAMP: Final = 0x0010
METADATA_FLAG_PHASE: Final = 0x0020
METADATA_FLAG_PROTOCOL: Final = 0x0040
METADATA_FLAG_DATA: Final = 0x0080
METADATA_FLAG_GPIO_STATUS: Final = 0x0100
METADATA_FLAG_GEN2_Q: Final = 0x0200
METADATA_FLAG_GEN2_LF: Final = 0x0400
METADATA_FLAG_GEN2_TARGET: Final = 0x0800
METADATA_FLAG_BRAND_IDENTIFIER: Final = 0x1000
METADATA_FLAG_TAGTYPE: Final = 0x2000
METADATA_FLAGS_KNOWN: Final = 0x3FFF
METADATA_FLAGS_GEN2_ONLY: Final = 0x0E00

# An embedded tag operation that failed reports this bit length and a 2-byte error code instead
# of data (mercuryapi: "0x8000 indicates the error, it is not the data length").
DATA_ERROR_MARKER: Final = 0x8000
PC_XPC_INDICATOR: Final = 0x02  # in the PC's first byte: XPC_W1 follows
XPC_W2_INDICATOR: Final = 0x80  # in XPC_W1's first byte: XPC_W2 follows
MAX_PORT: Final = 16  # port 16 travels as nibble 0 ("antenna 16 wraps around to 0")


@dataclass(frozen=True, slots=True)
class TagRead:
    """One singulation of one tag, as the module reported it."""

    epc: bytes
    pc: int  # 0 for protocols without a PC word (anything but Gen2)
    tag_crc: int | None = None  # None: absent on the wire (ATA); on encode, computed for Gen2
    rssi_dbm: int | None = None
    tx_port: int = 1
    rx_port: int = 1
    frequency_khz: int | None = None
    timestamp_ms: int | None = None  # relative to the search-cycle base time
    phase: int | None = None
    read_count: int = 1
    protocol: int | None = None
    data: bytes = b""  # embedded tag-op data, e.g. TID
    gpio: int | None = None  # low nibble GPO levels, high nibble GPI levels
    xpc: bytes = b""  # XPC_W1 (+ XPC_W2) when the PC says they are present
    data_error: int | None = None  # error code of a failed embedded tag operation

    @property
    def antenna(self) -> int:
        """Logical antenna under the monostatic map (TX n, RX n -> antenna n, so 0x11 -> 1)."""
        return self.tx_port

    @classmethod
    def for_epc(cls, epc: bytes, **fields: Any) -> TagRead:
        """A Gen2 read with the PC length and tag CRC a real tag would carry."""
        if len(epc) % 2 or len(epc) > 62:
            raise EncodeError(f"a Gen2 EPC is whole 16-bit words, at most 31: {epc.hex()}")
        pc = (len(epc) // 2) << 11
        crc = gen2_crc16(pc.to_bytes(2, "big") + epc)
        return cls(epc, pc, crc, **fields)


def _has_pc(protocol: int | None) -> bool:
    # Without a PROTOCOL field mercuryapi falls back to the protocol of the command: Gen2 here.
    return protocol in (None, TAG_PROTOCOL_GEN2)


def _port(nibble: int) -> int:
    return nibble or MAX_PORT


def _skip_ebv(cur: Cursor) -> None:
    while cur.u8() & 0x80:
        pass


def _decode_data(cur: Cursor) -> tuple[bytes, int | None]:
    bits = cur.u16()
    if bits & DATA_ERROR_MARKER:
        return b"", cur.u16()
    return cur.take((bits + 7) // 8), None


def decode_metadata(cur: Cursor, flags: int) -> TagRead:
    """The metadata fields of one record, as a TagRead with no EPC yet."""
    if flags & ~METADATA_FLAGS_KNOWN:
        raise FrameError(f"unknown metadata flags 0x{flags:04X}")
    read_count = cur.u8() if flags & METADATA_FLAG_READCOUNT else 1
    rssi = int.from_bytes(cur.take(1), "big", signed=True) if flags & METADATA_FLAG_RSSI else None
    ports = cur.u8() if flags & METADATA_FLAG_ANTENNAID else 0x11
    frequency = cur.uint(3) if flags & METADATA_FLAG_FREQUENCY else None
    timestamp = cur.uint(4) if flags & METADATA_FLAG_TIMESTAMP else None
    phase = cur.u16() if flags & METADATA_FLAG_PHASE else None
    protocol = cur.u8() if flags & METADATA_FLAG_PROTOCOL else None
    data, data_error = _decode_data(cur) if flags & METADATA_FLAG_DATA else (b"", None)
    gpio = cur.u8() if flags & METADATA_FLAG_GPIO_STATUS else None
    _skip_unrepresented(cur, flags, protocol)
    return TagRead(
        b"", 0, None, rssi, _port(ports >> 4), _port(ports & 0x0F), frequency, timestamp, phase,
        read_count, protocol, data, gpio, data_error=data_error,
    )  # fmt: skip


def _skip_unrepresented(cur: Cursor, flags: int, protocol: int | None) -> None:
    if _has_pc(protocol):
        cur.take((flags & METADATA_FLAGS_GEN2_ONLY).bit_count())
    if flags & METADATA_FLAG_BRAND_IDENTIFIER:
        cur.take(2)
    if flags & METADATA_FLAG_TAGTYPE:
        _skip_ebv(cur)


def decode_tag_read(cur: Cursor, flags: int) -> TagRead:
    meta = decode_metadata(cur, flags)
    block = Cursor(cur.take((cur.u16() + 7) // 8))
    pc, xpc = 0, b""
    if _has_pc(meta.protocol):
        pc = block.u16()
        if pc >> 8 & PC_XPC_INDICATOR:
            xpc = block.take(2)
            if xpc[0] & XPC_W2_INDICATOR:
                xpc += block.take(2)
    crc_len = 0 if meta.protocol == TAG_PROTOCOL_ATA else 2
    if block.remaining < crc_len:
        raise FrameError("EPC block shorter than its PC and CRC")
    epc = block.take(block.remaining - crc_len)
    tag_crc = block.u16() if crc_len else None
    return replace(meta, epc=epc, pc=pc, tag_crc=tag_crc, xpc=xpc)


def _encode_ports(read: TagRead) -> bytes:
    for port in (read.tx_port, read.rx_port):
        if not 1 <= port <= MAX_PORT:
            raise EncodeError(f"antenna port {port} outside 1..{MAX_PORT}")
    return bytes((((read.tx_port % MAX_PORT) << 4) | (read.rx_port % MAX_PORT),))


def _encode_rssi(rssi: int | None) -> bytes:
    try:
        return (rssi or 0).to_bytes(1, "big", signed=True)
    except OverflowError:
        raise EncodeError(f"rssi_dbm={rssi} is not a signed byte") from None


def _encode_data(read: TagRead) -> bytes:
    if read.data_error is not None:
        return pack_uint(DATA_ERROR_MARKER, 2, "data") + pack_uint(read.data_error, 2, "data_error")
    return pack_uint(len(read.data) * 8, 2, "data bits") + read.data


def _wire_protocol(read: TagRead, flags: int) -> int | None:
    """The protocol a decoder will see: None when the PROTOCOL field is not sent."""
    if not flags & METADATA_FLAG_PROTOCOL:
        return None
    return TAG_PROTOCOL_GEN2 if read.protocol is None else read.protocol


def encode_metadata(read: TagRead, flags: int) -> bytes:
    """Metadata fields in flag order; a flagged field that is None is sent as 0 (protocol: Gen2)."""
    if flags & ~METADATA_FLAGS_KNOWN:
        raise EncodeError(f"unknown metadata flags 0x{flags:04X}")
    protocol = _wire_protocol(read, flags)
    out = bytearray()
    if flags & METADATA_FLAG_READCOUNT:
        out += pack_uint(read.read_count, 1, "read_count")
    if flags & METADATA_FLAG_RSSI:
        out += _encode_rssi(read.rssi_dbm)
    if flags & METADATA_FLAG_ANTENNAID:
        out += _encode_ports(read)
    if flags & METADATA_FLAG_FREQUENCY:
        out += pack_uint(read.frequency_khz or 0, 3, "frequency_khz")
    if flags & METADATA_FLAG_TIMESTAMP:
        out += pack_uint(read.timestamp_ms or 0, 4, "timestamp_ms")
    if flags & METADATA_FLAG_PHASE:
        out += pack_uint(read.phase or 0, 2, "phase")
    if protocol is not None:
        out += pack_uint(protocol, 1, "protocol")
    if flags & METADATA_FLAG_DATA:
        out += _encode_data(read)
    if flags & METADATA_FLAG_GPIO_STATUS:
        out += pack_uint(read.gpio or 0, 1, "gpio")
    zeros = (flags & METADATA_FLAGS_GEN2_ONLY).bit_count() if _has_pc(protocol) else 0
    zeros += 2 * bool(flags & METADATA_FLAG_BRAND_IDENTIFIER) + bool(flags & METADATA_FLAG_TAGTYPE)
    return bytes(out) + bytes(zeros)


def _xpc_length(pc: int, xpc: bytes) -> int:
    if not pc >> 8 & PC_XPC_INDICATOR:
        return 0
    return 4 if xpc[:1] and xpc[0] & XPC_W2_INDICATOR else 2


def _encode_pc(read: TagRead) -> bytes:
    if len(read.xpc) != _xpc_length(read.pc, read.xpc):
        raise EncodeError(f"PC 0x{read.pc:04X} does not match XPC {read.xpc.hex()!r}")
    return pack_uint(read.pc, 2, "pc") + read.xpc


def encode_epc_block(read: TagRead, flags: int) -> bytes:
    protocol = _wire_protocol(read, flags)
    head = _encode_pc(read) if _has_pc(protocol) else b""
    tag_crc = read.tag_crc
    if tag_crc is None and protocol != TAG_PROTOCOL_ATA:
        tag_crc = gen2_crc16(head + read.epc)
    tail = b"" if protocol == TAG_PROTOCOL_ATA else pack_uint(tag_crc or 0, 2, "tag_crc")
    block = head + read.epc + tail
    return pack_uint(len(block) * 8, 2, "EPC bits") + block


def encode_tag_read(read: TagRead, flags: int) -> bytes:
    return encode_metadata(read, flags) + encode_epc_block(read, flags)
