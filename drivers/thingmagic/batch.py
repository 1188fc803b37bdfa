"""A continuous-read stream decoded many frames per call, tag reads as columns.

``ResponseDecoder`` + ``parse_stream_message`` build a ``Response`` and a ``TagRead`` per frame:
fine for bring-up, too slow for a reader streaming thousands of reads a second. Here one call
scans a whole buffer of module->host bytes with the same framing and resync rules as
``drivers.thingmagic.decoder`` (drop to the next 0xFF, LEN above 0xF8 is a bad length, a bad
CRC drops one byte and searches the next 0xFF) and writes each 0x22 tag record into
preallocated numpy columns: where its EPC lies in the buffer, TX port, RSSI, timestamp. Every
other frame (keep-alives, 0x2F acks, warnings, command replies, and records this scan does not
accept) is reported by offset and length, in order, so the caller hands it to the frame parser
of ``records``: the rare frames keep one parser, and a record the kernel rejects gets the
parser's own FrameError.

``scan`` runs a kernel (``drivers.compiled``); ``scan_twin`` is the plain-Python twin the tests
compare it with (and what runs with ``NUMBA_DISABLE_JIT=1`` is the kernel's own source). Both
return a ``Scan``. Bytes after ``consumed`` are an incomplete frame candidate (at most
``MAX_DATA_LEN + RESPONSE_OVERHEAD - 1`` bytes): keep them and prepend them to the next read.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import numpy as np
from numpy.typing import NDArray

from drivers.buffer import DecoderStats
from drivers.compiled import kernel
from drivers.errors import FrameError
from drivers.thingmagic.codec import Cursor
from drivers.thingmagic.commands import (
    OPCODE_READ_TAG_ID_MULTIPLE,
    SINGULATION_OPTION_FLAG_METADATA,
    TAG_PROTOCOL_ATA,
    TAG_PROTOCOL_GEN2,
)
from drivers.thingmagic.crc import TM_CRC_INIT, TM_CRC_NIBBLE_TABLE, tm_crc
from drivers.thingmagic.frames import MAX_DATA_LEN, RESPONSE_OVERHEAD, SOF
from drivers.thingmagic.records import MULTI_SELECT_MARKERS, RESPONSE_TYPE_TAG
from drivers.thingmagic.status import SUCCESS
from drivers.thingmagic.tag_read import (
    DATA_ERROR_MARKER,
    MAX_PORT,
    METADATA_FLAG_BRAND_IDENTIFIER,
    METADATA_FLAG_DATA,
    METADATA_FLAG_GPIO_STATUS,
    METADATA_FLAG_TAGTYPE,
    METADATA_FLAGS_GEN2_ONLY,
    METADATA_FLAGS_KNOWN,
    PC_XPC_INDICATOR,
    XPC_W2_INDICATOR,
)

F = TypeVar("F", bound=Callable[..., Any])
U8 = NDArray[np.uint8]
U16 = NDArray[np.uint16]

# counters[] slots
FRAMES: Final = 0
BAD_CHECKSUM: Final = 1
BAD_LENGTH: Final = 2
DISCARDED: Final = 3
N_COUNTERS: Final = 4
NO_TIMESTAMP: Final = -1  # timestamp column where the metadata flags carry none
_MARKERS: Final = tuple(sorted(MULTI_SELECT_MARKERS))
SOF_BYTES: Final = bytes((SOF,))
# Byte sizes of the fixed metadata fields, in flag-bit order (tag_read.decode_metadata):
# READCOUNT, RSSI, ANTENNAID, FREQUENCY, TIMESTAMP, PHASE, PROTOCOL.
_FIELD_SIZES: Final = np.array([1, 1, 1, 3, 4, 2, 1], np.int64)


def _jit(fn: F) -> F:
    return kernel(fn)  # compiled ahead of time, by numba's JIT, or as written: drivers.compiled


def _crc_byte_table() -> U16:
    # mercuryapi's nibble table folded into a byte table, as drivers.thingmagic.crc does.
    def step(crc: int, nibble: int) -> int:
        return (((crc << 4) | nibble) & 0xFFFF) ^ TM_CRC_NIBBLE_TABLE[crc >> 12]

    return np.array([step(step(h << 8, 0), 0) for h in range(256)], np.uint16)


CRC_TABLE: Final = _crc_byte_table()


@dataclass(frozen=True, slots=True)
class Scan:
    """What one call found. Read columns are parallel; ``read_at`` is each read's frame offset,
    so reads and ``other`` frames can be put back in wire order."""

    consumed: int
    epc_off: NDArray[np.int64]
    epc_len: NDArray[np.int32]
    antenna: NDArray[np.int16]  # TX port, 1..16 (the monostatic antenna)
    rssi: NDArray[np.float32]  # dBm; NaN where the metadata carries none
    timestamp_ms: NDArray[np.int64]  # NO_TIMESTAMP where the metadata carries none
    read_at: NDArray[np.int64]
    other_off: NDArray[np.int64]
    other_len: NDArray[np.int32]
    counters: NDArray[np.int64]  # FRAMES, BAD_CHECKSUM, BAD_LENGTH, DISCARDED

    def __len__(self) -> int:
        return int(self.epc_off.shape[0])

    def epcs(self, buf: bytes) -> list[bytes]:
        return _pieces(buf, self.epc_off, self.epc_len)

    def others(self, buf: bytes) -> list[bytes]:
        return _pieces(buf, self.other_off, self.other_len)

    def add_to(self, stats: DecoderStats) -> None:
        add_counters(self.counters, stats)


def _pieces(buf: bytes, offsets: NDArray[np.int64], lengths: NDArray[np.int32]) -> list[bytes]:
    return [buf[o : o + n] for o, n in zip(offsets.tolist(), lengths.tolist(), strict=True)]


def add_counters(counters: NDArray[np.int64], stats: DecoderStats) -> None:
    """A scan's ``counters`` (FRAMES, BAD_CHECKSUM, BAD_LENGTH, DISCARDED) onto ``stats``."""
    c = counters.tolist()
    stats.frames += c[FRAMES]
    stats.bad_checksum += c[BAD_CHECKSUM]
    stats.bad_length += c[BAD_LENGTH]
    stats.discarded_bytes += c[DISCARDED]


# ---------------------------------------------------------------------------------------------
# The kernel. Written for numba: flat loops over a uint8 array, every field read bounds-checked
# against the frame's data end; any record it cannot take whole is left to the Python parser.


@_jit
def _frame_crc(buf: U8, start: int, end: int, table: U16) -> int:
    crc = TM_CRC_INIT
    for i in range(start, end):
        crc = (((crc << 8) | int(buf[i])) & 0xFFFF) ^ int(table[crc >> 8])
    return crc


@_jit
def _u16(buf: U8, p: int) -> int:
    return (int(buf[p]) << 8) | int(buf[p + 1])


@_jit
def _skip_metadata(buf: U8, p: int, end: int, flags: int, out: NDArray[np.int64]) -> int:
    """Walk the metadata fields; out[:4] = rssi+129 (0: none), ports, timestamp, protocol.
    Returns the position after them, past ``end`` if the record is short."""
    out[0], out[1], out[2], out[3] = 0, 0x11, NO_TIMESTAMP, -1
    for bit in range(7):
        if flags & (1 << bit):
            if p + _FIELD_SIZES[bit] > end:
                return end + 1
            if bit == 1:
                out[0] = ((int(buf[p]) + 128) & 0xFF) + 1
            elif bit == 2:
                out[1] = int(buf[p])
            elif bit == 4:
                out[2] = (_u16(buf, p) << 16) | _u16(buf, p + 2)
            elif bit == 6:
                out[3] = int(buf[p])
            p += _FIELD_SIZES[bit]
    return _skip_tail(buf, p, end, flags, out[3] == -1 or out[3] == TAG_PROTOCOL_GEN2)


@_jit
def _skip_tail(buf: U8, p: int, end: int, flags: int, gen2: bool) -> int:
    if flags & METADATA_FLAG_DATA:  # u16 bits (or the error marker and a u16 code), bytes
        if p + 2 > end:
            return end + 1
        bits = _u16(buf, p)
        p += 4 if bits & DATA_ERROR_MARKER else 2 + (bits + 7) // 8
    p += 1 if flags & METADATA_FLAG_GPIO_STATUS else 0
    if gen2:
        for bit in range(9, 12):
            p += (flags >> bit) & 1
    p += 2 if flags & METADATA_FLAG_BRAND_IDENTIFIER else 0
    if flags & METADATA_FLAG_TAGTYPE:  # an EBV: bytes with the top bit set, then one without
        while p < end and buf[p] & 0x80:
            p += 1
        p += 1
    return p


@_jit
def _header(buf: U8, p: int, end: int, meta: NDArray[np.int64]) -> int:
    """The stream header of a tag record: meta[5] = metadata flags; returns the position after
    the response type, past ``end`` if it is not a tag record we take."""
    option = int(buf[p]) if p < end else 0
    if option == _MARKERS[0] or option == _MARKERS[1] or option == _MARKERS[2]:
        p += 1
        option = int(buf[p]) if p < end else 0
    with_flags = option & SINGULATION_OPTION_FLAG_METADATA
    meta[5] = _u16(buf, p + 3) if with_flags and p + 5 <= end else 0
    p += 5 if with_flags else 3
    if p + 1 > end or buf[p] != RESPONSE_TYPE_TAG or meta[5] & ~METADATA_FLAGS_KNOWN:
        return end + 1
    return p + 1


@_jit
def _tag_record(buf: U8, p: int, end: int, meta: NDArray[np.int64]) -> int:
    """Parse one 0x22 record's DATA in buf[p:end]; returns the EPC's offset or -1.
    meta[:5] = rssi+129, ports, timestamp, protocol, EPC length."""
    p = _header(buf, p, end, meta)
    if p <= end:
        p = _skip_metadata(buf, p, end, meta[5], meta)
    if p + 2 > end or p + 2 + (_u16(buf, p) + 7) // 8 != end:  # short, or bytes after the EPC
        return -1
    p += 2
    if meta[3] == -1 or meta[3] == TAG_PROTOCOL_GEN2:
        p += 2
        if p <= end and buf[p - 2] & PC_XPC_INDICATOR:
            p += 4 if p < end and buf[p] & XPC_W2_INDICATOR else 2
    crc_len = 0 if meta[3] == TAG_PROTOCOL_ATA else 2
    meta[4] = end - crc_len - p
    return p if meta[4] >= 0 else -1


@_jit
def scan_kernel(
    buf: U8,
    table: U16,
    epc_off: NDArray[np.int64],
    epc_len: NDArray[np.int32],
    antenna: NDArray[np.int16],
    rssi: NDArray[np.float32],
    timestamp: NDArray[np.int64],
    read_at: NDArray[np.int64],
    other_off: NDArray[np.int64],
    other_len: NDArray[np.int32],
    counters: NDArray[np.int64],
) -> tuple[int, int, int]:
    n = buf.shape[0]
    meta = np.empty(6, np.int64)
    pos = nreads = nother = 0
    while True:
        at = pos
        while at < n and buf[at] != SOF:
            at += 1
        counters[DISCARDED] += at - pos
        pos = at
        if n - pos < 2:
            return pos, nreads, nother
        length = int(buf[pos + 1])
        if length > MAX_DATA_LEN:
            counters[BAD_LENGTH] += 1
            counters[DISCARDED] += 1
            pos += 1
            continue
        total = length + RESPONSE_OVERHEAD
        if n - pos < total:
            return pos, nreads, nother
        if _frame_crc(buf, pos + 1, pos + total - 2, table) != _u16(buf, pos + total - 2):
            counters[BAD_CHECKSUM] += 1
            counters[DISCARDED] += 1
            pos += 1
            continue
        counters[FRAMES] += 1
        epc = -1
        if buf[pos + 2] == OPCODE_READ_TAG_ID_MULTIPLE and _u16(buf, pos + 3) == SUCCESS:
            epc = _tag_record(buf, pos + 5, pos + 5 + length, meta)
        if epc >= 0:
            epc_off[nreads] = epc
            epc_len[nreads] = meta[4]
            tx = meta[1] >> 4
            antenna[nreads] = tx if tx else MAX_PORT  # nibble 0 is port 16
            rssi[nreads] = np.nan if meta[0] == 0 else meta[0] - 129
            timestamp[nreads] = meta[2]
            read_at[nreads] = pos
            nreads += 1
        else:
            other_off[nother] = pos
            other_len[nother] = total
            nother += 1
        pos += total


# ---------------------------------------------------------------------------------------------
# The twin: the same contract written as ordinary Python over bytes, with the Cursor of the
# record codec; the tests hold the kernel to it and both to ResponseDecoder + parse_stream_message.

ReadRow = tuple[int, int, int, float, int, int]  # epc_off, epc_len, antenna, rssi, ts, read_at


def scan_twin(buf: bytes) -> Scan:
    reads: list[ReadRow] = []
    others: list[tuple[int, int]] = []
    counters = [0] * N_COUNTERS
    pos = 0
    while True:
        pos, total = _frame_twin(buf, pos, counters)
        if not total:
            return _scan_of(pos, reads, others, counters)
        counters[FRAMES] += 1
        row = _record_twin(buf, pos, total)
        if row is None:
            others.append((pos, total))
        else:
            reads.append(row)
        pos += total


def _frame_twin(buf: bytes, pos: int, counters: list[int]) -> tuple[int, int]:
    """The next frame at or after ``pos``: (start, length), or (start, 0) to wait for more."""
    while True:
        at = buf.find(SOF_BYTES, pos)
        at = len(buf) if at < 0 else at
        counters[DISCARDED] += at - pos
        pos = at
        if len(buf) - pos < 2:
            return pos, 0
        total = buf[pos + 1] + RESPONSE_OVERHEAD
        fault = BAD_LENGTH if buf[pos + 1] > MAX_DATA_LEN else None
        if fault is None:
            if len(buf) - pos < total:
                return pos, 0
            raw = buf[pos : pos + total]
            fault = None if tm_crc(raw[1:-2]) == int.from_bytes(raw[-2:], "big") else BAD_CHECKSUM
        if fault is None:
            return pos, total
        counters[fault] += 1
        counters[DISCARDED] += 1  # the 0xFF that opened the candidate
        pos += 1


def _record_twin(buf: bytes, pos: int, total: int) -> ReadRow | None:
    raw = buf[pos : pos + total]
    if raw[2] != OPCODE_READ_TAG_ID_MULTIPLE or int.from_bytes(raw[3:5], "big") != SUCCESS:
        return None
    cur = Cursor(raw[5:-2])
    try:
        flags = _header_twin(cur)
        if flags & ~METADATA_FLAGS_KNOWN:
            return None
        rssi, ports, stamp, protocol = _metadata_twin(cur, flags)
        epc_at, epc_len = _epc_block_twin(cur, protocol)
    except FrameError:
        return None
    tx = ports >> 4 or MAX_PORT
    return (pos + 5 + epc_at, epc_len, tx, rssi, stamp, pos)


def _header_twin(cur: Cursor) -> int:
    """The metadata flags of a tag record; FrameError for anything else."""
    option = cur.u8()
    if option in MULTI_SELECT_MARKERS:
        option = cur.u8()
    cur.u16()
    flags = cur.u16() if option & SINGULATION_OPTION_FLAG_METADATA else 0
    if cur.u8() != RESPONSE_TYPE_TAG:
        raise FrameError("not a tag record")
    return flags


def _metadata_twin(cur: Cursor, flags: int) -> tuple[float, int, int, int | None]:
    fields: dict[int, int] = {}
    for bit, size in enumerate(_FIELD_SIZES.tolist()):
        if flags & (1 << bit):
            fields[bit] = cur.uint(size)
    if flags & METADATA_FLAG_DATA:
        bits = cur.u16()
        cur.take(2 if bits & DATA_ERROR_MARKER else (bits + 7) // 8)
    cur.take(bool(flags & METADATA_FLAG_GPIO_STATUS))
    protocol = fields.get(6)
    if protocol in (None, TAG_PROTOCOL_GEN2):
        cur.take((flags & METADATA_FLAGS_GEN2_ONLY).bit_count())
    cur.take(2 * bool(flags & METADATA_FLAG_BRAND_IDENTIFIER))
    if flags & METADATA_FLAG_TAGTYPE:
        while cur.u8() & 0x80:
            pass
    rssi = fields.get(1)
    signed = math.nan if rssi is None else float(rssi - 256 if rssi > 127 else rssi)
    return signed, fields.get(2, 0x11), fields.get(4, NO_TIMESTAMP), protocol


def _epc_block_twin(cur: Cursor, protocol: int | None) -> tuple[int, int]:
    block = Cursor(cur.take((cur.u16() + 7) // 8))
    start = cur.pos - block.remaining
    cur.expect_end()
    if protocol in (None, TAG_PROTOCOL_GEN2):
        pc = block.u16()
        if pc >> 8 & PC_XPC_INDICATOR and block.take(2)[0] & XPC_W2_INDICATOR:
            block.take(2)
    crc_len = 0 if protocol == TAG_PROTOCOL_ATA else 2
    if block.remaining < crc_len:
        raise FrameError("EPC block shorter than its PC and CRC")
    return start + block.pos, block.remaining - crc_len


def _scan_of(
    consumed: int, reads: list[ReadRow], others: list[tuple[int, int]], counters: list[int]
) -> Scan:
    r = list(zip(*reads, strict=True)) or [()] * 6
    o = list(zip(*others, strict=True)) or [()] * 2
    return Scan(
        consumed, np.array(r[0], np.int64), np.array(r[1], np.int32),
        np.array(r[2], np.int16), np.array(r[3], np.float32), np.array(r[4], np.int64),
        np.array(r[5], np.int64), np.array(o[0], np.int64), np.array(o[1], np.int32),
        np.array(counters, np.int64),
    )  # fmt: skip


def capacity_for(nbytes: int) -> int:
    """Frames that ``nbytes`` can hold at most (the shortest frame is RESPONSE_OVERHEAD bytes)."""
    return nbytes // RESPONSE_OVERHEAD + 1


# epc_off, epc_len, antenna, rssi, timestamp_ms, read_at, other_off, other_len (as in ``Scan``)
Columns = tuple[
    NDArray[np.int64], NDArray[np.int32], NDArray[np.int16], NDArray[np.float32],
    NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], NDArray[np.int32],
]  # fmt: skip


class Scanner:
    """Owns the output columns, grown to fit the largest buffer seen, reused across calls: a
    ``Scan`` it returns holds views that the next ``scan`` overwrites (copy what you keep)."""

    def __init__(self, capacity: int = 1024) -> None:
        self._alloc(capacity)

    def _alloc(self, capacity: int) -> None:
        self._capacity = capacity
        self._cols: Columns = (
            np.empty(capacity, np.int64), np.empty(capacity, np.int32),
            np.empty(capacity, np.int16), np.empty(capacity, np.float32),
            np.empty(capacity, np.int64), np.empty(capacity, np.int64),
            np.empty(capacity, np.int64), np.empty(capacity, np.int32),
        )  # fmt: skip

    def columns(self, nbytes: int) -> Columns:
        """The output columns, with room for what ``nbytes`` can hold (``scan_kernel``'s
        arguments after the table): for a caller that runs the kernel inside one of its own."""
        need = capacity_for(nbytes)
        if need > self._capacity:
            self._alloc(max(need, 2 * self._capacity))
        return self._cols

    def others(self, buf: bytes, n: int) -> list[bytes]:
        """The first ``n`` other frames of the last scan of ``buf``, in order."""
        return _pieces(buf, self._cols[6][:n], self._cols[7][:n])

    def scan(self, buf: bytes) -> Scan:
        cols = self.columns(len(buf))
        counters = np.zeros(N_COUNTERS, np.int64)
        data = np.frombuffer(buf, np.uint8)
        consumed, nreads, nother = scan_kernel(data, CRC_TABLE, *cols, counters)
        c = self._cols
        return Scan(
            consumed, c[0][:nreads], c[1][:nreads], c[2][:nreads], c[3][:nreads], c[4][:nreads],
            c[5][:nreads], c[6][:nother], c[7][:nother], counters,
        )  # fmt: skip


def scan(buf: bytes) -> Scan:
    """One-off scan; a session keeps a ``Scanner`` to reuse its columns."""
    return Scanner(capacity_for(len(buf))).scan(buf)
