"""The batched stream scan: kernel == twin == ResponseDecoder + parse_stream_message.

Real frames: the SparkFun log (tests/vectors/thingmagic_sparkfun_logs_all_frames.json, 2,284
frames received from an M6e Nano, sparkfun/SparkFun_Simultaneous_RFID_Tag_Reader_Library @
60dabeb) and tests/vectors/thingmagic.json (with its bad-CRC capture). Synthetic streams:
Hypothesis draws tag records in both header layouts and any metadata flags, keep-alives, acks
and garbage, cut into chunks the way a serial port delivers them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.errors import FrameError
from drivers.thingmagic.batch import NO_TIMESTAMP, Scan, scan, scan_twin
from drivers.thingmagic.commands import TAG_PROTOCOL_ATA, TAG_PROTOCOL_GEN2
from drivers.thingmagic.decoder import ResponseDecoder
from drivers.thingmagic.frames import Response
from drivers.thingmagic.records import (
    ReadingStarted,
    ReadingStopped,
    TagRead,
    encode_keepalive,
    encode_stream_record,
    parse_stream_message,
)
from drivers.thingmagic.tag_read import METADATA_FLAG_DATA, METADATA_FLAGS_KNOWN

pytestmark = pytest.mark.kernels

VECTORS_DIR = Path(__file__).parents[1] / "vectors"
LOG: list[dict[str, Any]] = json.loads(
    (VECTORS_DIR / "thingmagic_sparkfun_logs_all_frames.json").read_text()
)
RECEIVED = b"".join(bytes.fromhex(f["hex"]) for f in LOG if f["dir"] == "Received")
VECTORS: list[dict[str, Any]] = json.loads((VECTORS_DIR / "thingmagic.json").read_text())
FROM_MODULE = b"".join(bytes.fromhex(v["hex"]) for v in VECTORS if v["direction"] == "module->host")

Item = tuple[Any, ...]


def via_decoder(buf: bytes) -> tuple[list[Item], list[int], int]:
    """What the per-frame path makes of ``buf``: items in order, counters, bytes left over."""
    decoder = ResponseDecoder(max_size=len(buf) + 1)
    decoder.receive_data(buf)
    items: list[Item] = []
    for frame in decoder.frames():
        try:
            message = parse_stream_message(frame)
        except FrameError:
            message = None
        if isinstance(message, TagRead) and frame.status == 0:
            rssi = math.nan if message.rssi_dbm is None else float(message.rssi_dbm)
            stamp = NO_TIMESTAMP if message.timestamp_ms is None else message.timestamp_ms
            items.append(("read", message.epc, message.antenna, rssi, stamp))
        else:
            items.append(("other", frame.to_bytes()))
    s = decoder.stats
    return items, [s.frames, s.bad_checksum, s.bad_length, s.discarded_bytes], decoder.buffered


def items_of(result: Scan, buf: bytes) -> list[Item]:
    reads = zip(
        result.read_at.tolist(),
        result.epcs(buf),
        result.antenna.tolist(),
        result.rssi.tolist(),
        result.timestamp_ms.tolist(),
        strict=True,
    )
    out: list[tuple[int, Item]] = [(at, ("read", e, a, r, t)) for at, e, a, r, t in reads]
    out += [
        (at, ("other", raw))
        for at, raw in zip(result.other_off.tolist(), result.others(buf), strict=True)
    ]
    return [item for _, item in sorted(out, key=lambda pair: pair[0])]


def same(a: list[Item], b: list[Item]) -> bool:
    # NaN != NaN: compare the RSSI as text.
    return [repr(x) for x in a] == [repr(x) for x in b]


def assert_all_agree(buf: bytes) -> None:
    fast, twin = scan(buf), scan_twin(buf)
    items, counters, left = via_decoder(buf)
    assert same(items_of(fast, buf), items)
    assert same(items_of(twin, buf), items)
    assert fast.counters.tolist() == twin.counters.tolist() == counters
    assert fast.consumed == twin.consumed == len(buf) - left


def test_the_whole_log_scans_as_the_decoder_parses_it() -> None:
    result = scan(RECEIVED)
    assert (len(result), len(result.other_off), result.consumed) == (1302, 982, len(RECEIVED))
    assert_all_agree(RECEIVED)


def test_captured_frames_with_a_bad_crc() -> None:
    result = scan(FROM_MODULE)
    assert result.counters[1] == 1  # data22_2, captured with a broken CRC
    assert_all_agree(FROM_MODULE)


@pytest.mark.parametrize("cut", [1, 7, 29, 1000, 54_321])
def test_joining_mid_stream(cut: int) -> None:
    assert_all_agree(RECEIVED[cut:])


def test_chunked_scans_with_the_remainder_carried_find_the_same_reads() -> None:
    whole = scan(RECEIVED)
    rng = np.random.default_rng(5)
    epcs: list[bytes] = []
    rest, at = b"", 0
    while at < len(RECEIVED):
        size = int(rng.integers(1, 400))
        buf = rest + RECEIVED[at : at + size]
        at += size
        part = scan(buf)
        epcs += part.epcs(buf)
        rest = buf[part.consumed :]
    assert epcs == whole.epcs(RECEIVED)
    assert rest == b""


def test_a_read_in_both_layouts_gives_its_columns() -> None:
    read = TagRead.for_epc(bytes.fromhex("E2 00 00 17 22 11 01 44 18 90 5E 5C"), rssi_dbm=-61,
                           tx_port=3, rx_port=3, timestamp_ms=0x01020304)  # fmt: skip
    for multi in (False, True):
        raw = encode_stream_record(read, multi_select=multi).to_bytes()
        result = scan(raw)
        assert result.epcs(raw) == [read.epc]
        assert (result.antenna[0], result.rssi[0], result.timestamp_ms[0]) == (3, -61, 0x01020304)


def test_port_16_travels_as_nibble_zero() -> None:
    read = TagRead.for_epc(bytes(12), tx_port=16, rx_port=16)
    assert scan(encode_stream_record(read).to_bytes()).antenna.tolist() == [16]


def test_no_rssi_or_timestamp_flag_gives_nan_and_the_marker() -> None:
    raw = encode_stream_record(TagRead.for_epc(bytes(12)), metadata_flags=0x0004).to_bytes()
    result = scan(raw)
    assert math.isnan(result.rssi[0])
    assert result.timestamp_ms[0] == NO_TIMESTAMP


# --- Hypothesis streams -------------------------------------------------------------------

epcs = st.integers(0, 31).flatmap(lambda words: st.binary(min_size=2 * words, max_size=2 * words))


@st.composite
def tag_frames(draw: st.DrawFn) -> bytes:
    flags = draw(st.integers(0, METADATA_FLAGS_KNOWN))
    protocol = draw(st.sampled_from([None, TAG_PROTOCOL_GEN2, TAG_PROTOCOL_ATA, 0x03]))
    data = draw(st.binary(max_size=8)) if flags & METADATA_FLAG_DATA else b""
    read = TagRead.for_epc(
        draw(epcs),
        rssi_dbm=draw(st.integers(-128, 127)),
        tx_port=draw(st.integers(1, 16)),
        rx_port=draw(st.integers(1, 16)),
        timestamp_ms=draw(st.integers(0, 2**32 - 1)),
        protocol=protocol,
        data=data,
        data_error=draw(st.sampled_from([None, 0x0105])) if flags & METADATA_FLAG_DATA else None,
    )
    if protocol not in (None, TAG_PROTOCOL_GEN2):  # no PC word on the wire
        read = TagRead(read.epc, 0, None if protocol == TAG_PROTOCOL_ATA else 0x1234,
                       read.rssi_dbm, read.tx_port, read.rx_port, timestamp_ms=1,
                       protocol=protocol)  # fmt: skip
    try:
        response = encode_stream_record(
            read, metadata_flags=flags, multi_select=draw(st.booleans())
        )
    except ValueError:  # a record too long for one frame
        return b""
    return response.to_bytes()


other_frames = st.sampled_from(
    [
        encode_keepalive().to_bytes(),
        encode_keepalive(123_456).to_bytes(),
        ReadingStarted().to_response().to_bytes(),
        ReadingStopped().to_response().to_bytes(),
        Response(0x22, 0x0505).to_bytes(),
        Response(0x22, 0x0000, bytes.fromhex("88 10 00 1B 00 00 02 01 02 03")).to_bytes(),
        Response(0x22, 0x0000, bytes.fromhex("10 00 1B 00 00 01 00")).to_bytes(),
        Response(0x03, 0x0000, bytes(20)).to_bytes(),
    ]
)


def corrupt(frame: bytes, at: int, value: int) -> bytes:
    if not frame:
        return frame
    i = at % len(frame)
    return frame[:i] + bytes((value,)) + frame[i + 1 :]


pieces = st.one_of(
    tag_frames(),
    other_frames,
    st.binary(max_size=12),
    st.builds(corrupt, tag_frames(), st.integers(0, 300), st.integers(0, 255)),
    st.sampled_from([b"\xff", b"\xff\xf9", b"\xff\x02"]),
)


@given(st.lists(pieces, max_size=12))
@settings(deadline=None)
def test_random_streams_agree(parts: list[bytes]) -> None:
    assert_all_agree(b"".join(parts))


@given(st.lists(tag_frames(), min_size=1, max_size=6), st.lists(st.integers(1, 64), max_size=8))
@settings(deadline=None)
def test_any_chunking_finds_every_read(frames: list[bytes], sizes: list[int]) -> None:
    stream = b"".join(frames)
    expected = [i for i in via_decoder(stream)[0] if i[0] == "read"]
    found: list[bytes] = []
    rest, at = b"", 0
    for size in [*sizes, len(stream)]:
        buf = rest + stream[at : at + size]
        at += size
        part = scan(buf)
        found += part.epcs(buf)
        rest = buf[part.consumed :]
    assert found == [i[1] for i in expected]
