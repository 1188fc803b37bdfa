"""Stream records and tag-buffer replies against the decoded vectors (docs/drivers/thingmagic.md
1.8-1.10).

``expected`` fields in tests/vectors/thingmagic.json were decoded independently of this code:
1,305 streamed reads and 27 tag-buffer replies from the SparkFun logs and the 2024 captures.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import DeviceError, EncodeError, FrameError
from drivers.thingmagic.commands import TAG_PROTOCOL_ATA, TAG_PROTOCOL_GEN2
from drivers.thingmagic.frames import Response
from drivers.thingmagic.records import (
    KeepAlive,
    ReaderWarning,
    ReadingStarted,
    ReadingStopped,
    StatsRecord,
    TagRead,
    encode_keepalive,
    encode_stream_record,
    encode_tag_buffer,
    parse_stream_message,
    parse_tag_buffer,
    parse_tag_count,
)

VECTORS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parents[1] / "vectors" / "thingmagic.json").read_text()
)
STREAMED = [v for v in VECTORS if "tag" in v.get("expected", {})]
BUFFERED = [v for v in VECTORS if "tags" in v.get("expected", {})]


def resp(text: str) -> Response:
    return Response.from_bytes(bytes.fromhex(text))


def by_var(var: str) -> dict[str, Any]:
    (vector,) = [v for v in VECTORS if v["source"].get("var") == var]
    return vector


def check_tag(read: TagRead, expected: dict[str, Any]) -> None:
    ports = f"0x{(read.tx_port % 16) << 4 | read.rx_port % 16:02X}"
    actual = {
        "read_count": read.read_count,
        "rssi_dbm": read.rssi_dbm,
        "antenna": ports,
        "freq_khz": read.frequency_khz,
        "timestamp_ms": read.timestamp_ms,
        "phase": read.phase,
        "protocol": read.protocol,
        "data": read.data.hex().upper(),
        "gpio": None if read.gpio is None else f"0x{read.gpio:02X}",
        "epc_len_bits": (len(read.epc) + len(read.xpc) + 4) * 8,
        "pc": f"{read.pc:04X}",
        "epc": read.epc.hex().upper(),
        "tag_crc": f"{read.tag_crc:04X}",
    }
    assert {key: actual[key] for key in expected} == expected


def test_vector_counts() -> None:
    assert (len(STREAMED), len(BUFFERED)) == (1305, 27)


@pytest.mark.parametrize("vector", STREAMED, ids=lambda v: v["hex"][-5:])
def test_streamed_read_decodes_and_re_encodes(vector: dict[str, Any]) -> None:
    expected = vector["expected"]
    response = resp(vector["hex"])
    read = parse_stream_message(response)
    assert isinstance(read, TagRead)
    check_tag(read, expected["tag"])
    again = encode_stream_record(
        read,
        metadata_flags=int(expected["metadata_flags"], 16),
        search_flags=int(expected["search_flags"], 16),
        multi_select=expected["multiselect"],
    )
    assert parse_stream_message(again) == read
    if expected["option"] == "0x10":  # the encoder always sends option 0x10
        assert again == response


@pytest.mark.parametrize("vector", BUFFERED, ids=lambda v: v["hex"][-5:])
def test_tag_buffer_reply_decodes_and_re_encodes(vector: dict[str, Any]) -> None:
    expected = vector["expected"]
    response = resp(vector["hex"])
    reads = parse_tag_buffer(response)
    assert len(reads) == expected["count"]
    for read, tag in zip(reads, expected["tags"], strict=True):
        check_tag(read, tag)
    flags = int(expected["metadata_flags"], 16)
    assert encode_tag_buffer(reads, metadata_flags=flags) == response


def test_sparkfun_source_comment_frame() -> None:
    read = parse_stream_message(
        resp(
            "FF 28 22 00 00 10 00 1B 01 FF 01 01 C4 11 0E 16 40 00 00 01 27 00 00 05 00 00 0F"
            " 00 80 30 00 00 00 00 00 00 00 00 00 00 00 15 45 E9 4A 56 1D"
        )
    )
    assert isinstance(read, TagRead)
    assert (read.rssi_dbm, read.frequency_khz, read.timestamp_ms) == (-60, 923_200, 295)
    assert read.antenna == 1


def test_stats_record_keeps_its_payload() -> None:
    message = parse_stream_message(resp(by_var("data22_1")["hex"]))
    # LEN 0x0B: 88 | option 00 | flags 05 1F | type 02 | six payload bytes, then the CRC DA 19.
    assert message == StatsRecord(bytes.fromhex("82 00 82 00 01 2B"))


def test_keepalive_forms() -> None:
    plain = "FF 00 22 04 00 84 E0"  # SparkFun log, once per search cycle
    assert parse_stream_message(resp(plain)) == KeepAlive(0x0400, None)
    assert encode_keepalive() == resp(plain)
    stamped = by_var("data22_3")["hex"]  # 2024 capture: multi-select form with a timestamp
    assert parse_stream_message(resp(stamped)) == KeepAlive(0x0400, 1016)
    assert encode_keepalive(1016) == resp(stamped)


@pytest.mark.parametrize("status", [0x0504, 0x0505])
def test_reader_warnings(status: int) -> None:
    warning = parse_stream_message(Response(0x22, status))
    assert warning == ReaderWarning(status)
    assert warning.to_response() == Response(0x22, status)
    assert "TEMPERATURE" in str(ReaderWarning(0x0504))


def test_start_and_stop_acks() -> None:
    started, stopped = resp("FF 04 2F 00 00 01 22 00 00 6D C3"), resp("FF 01 2F 00 00 02 30 E6")
    assert parse_stream_message(started) == ReadingStarted()
    assert parse_stream_message(stopped) == ReadingStopped()
    assert ReadingStarted().to_response() == started
    assert ReadingStopped().to_response() == stopped
    assert parse_stream_message(Response(0x2F, 0x0105)) == ReaderWarning(0x0105)


def test_tag_count_of_a_timed_read() -> None:
    # Read single tag.txt: one tag, then a capture with two.
    assert parse_tag_count(resp("FF 07 22 00 00 00 00 13 00 00 00 01 8B 58")) == 1
    assert parse_tag_count(resp("FF 07 22 00 00 00 00 13 00 00 00 02 8B 5B")) == 2
    assert parse_tag_count(resp("FF 00 22 04 00 84 E0")) == 0


@pytest.mark.parametrize(
    "response",
    [
        Response(0x03, 0),  # not a stream opcode
        Response(0x2F, 0, b"\x04"),  # newer firmware's "param" message, not decoded
        Response(0x22, 0, bytes.fromhex("10 00 1B 01 FF 03")),  # unknown response type
        Response(0x22, 0, bytes.fromhex("10 00 1B 01 FF 01 01")),  # record cut short
        Response(0x22, 0, bytes.fromhex("10 00 1B 80 00 01")),  # unknown metadata flag
    ],
)
def test_malformed_stream_content_is_a_frame_error(response: Response) -> None:
    with pytest.raises(FrameError):
        parse_stream_message(response)


def test_tag_buffer_errors() -> None:
    with pytest.raises(DeviceError) as info:
        parse_tag_buffer(Response(0x29, 0x0600))
    assert info.value.status == 0x0600
    with pytest.raises(FrameError):
        parse_tag_buffer(Response(0x22, 0))


def test_for_epc_builds_a_real_tags_pc_and_crc() -> None:
    read = TagRead.for_epc(bytes.fromhex("E200001B6909019817106766"), rssi_dbm=-45)
    assert (read.pc, read.tag_crc, read.rssi_dbm) == (0x3000, 0x4C0D, -45)
    with pytest.raises(EncodeError):
        TagRead.for_epc(b"\x01\x02\x03")


def test_wire_details() -> None:
    base = TagRead.for_epc(bytes(12))
    for read, flags in [
        (replace(base, tx_port=16, rx_port=16), 0x0004),  # port 16 travels as nibble 0
        (replace(base, pc=0x3200, xpc=bytes.fromhex("0012")), 0x0000),  # XPC_W1
        (replace(base, pc=0x3200, xpc=bytes.fromhex("8000 0001")), 0x0000),  # XPC_W1 + W2
        (replace(base, data_error=0x0423), 0x0080),  # failed embedded tag op
        (TagRead(b"\xab\xcd", 0, None, protocol=TAG_PROTOCOL_ATA), 0x0040),  # no PC, no CRC
    ]:
        assert parse_stream_message(encode_stream_record(read, metadata_flags=flags)) == read
    wire = encode_stream_record(replace(base, tx_port=16, rx_port=16), metadata_flags=0x0004)
    assert wire.data[6] == 0x00


@pytest.mark.parametrize(
    "read",
    [
        TagRead(bytes(12), 0x3000, rssi_dbm=-200),
        TagRead(bytes(12), 0x3000, tx_port=17),
        TagRead(bytes(12), 0x3200),  # PC announces an XPC word that is missing
    ],
)
def test_encoding_rejects_impossible_reads(read: TagRead) -> None:
    with pytest.raises(EncodeError):
        encode_stream_record(read)


@st.composite
def reads_with_flags(draw: st.DrawFn) -> tuple[TagRead, int]:
    flags = draw(st.integers(0, 0x3FFF))

    def field(flag: int, values: st.SearchStrategy[Any], absent: Any = None) -> Any:
        return draw(values) if flags & flag else absent

    protocol = field(0x40, st.sampled_from([TAG_PROTOCOL_GEN2, 0x03, TAG_PROTOCOL_ATA]))
    gen2 = protocol in (None, TAG_PROTOCOL_GEN2)
    xpc = draw(st.sampled_from([b"", b"\x00\x01", b"\x80\x00\x00\x02"])) if gen2 else b""
    pc = (draw(st.integers(0, 0xFFFF)) & ~0x0200 | (0x0200 if xpc else 0)) if gen2 else 0
    data_error = field(0x80, st.one_of(st.none(), st.integers(0, 0xFFFF)))
    read = TagRead(
        epc=draw(st.binary(max_size=30)),  # small enough for two records in one reply
        pc=pc,
        tag_crc=None if protocol == TAG_PROTOCOL_ATA else draw(st.integers(0, 0xFFFF)),
        rssi_dbm=field(0x02, st.integers(-128, 127)),
        tx_port=field(0x04, st.integers(1, 16), 1),
        rx_port=field(0x04, st.integers(1, 16), 1),
        frequency_khz=field(0x08, st.integers(0, 0xFFFFFF)),
        timestamp_ms=field(0x10, st.integers(0, 0xFFFFFFFF)),
        phase=field(0x20, st.integers(0, 0xFFFF)),
        read_count=field(0x01, st.integers(0, 0xFF), 1),
        protocol=protocol,
        data=field(0x80, st.binary(max_size=32), b"") if data_error is None else b"",
        gpio=field(0x100, st.integers(0, 0xFF)),
        xpc=xpc,
        data_error=data_error,
    )
    return read, flags


@given(reads_with_flags(), st.booleans(), st.integers(0, 0xFFFF))
def test_tag_read_round_trip(
    read_and_flags: tuple[TagRead, int], multi_select: bool, search_flags: int
) -> None:
    read, flags = read_and_flags
    wire = encode_stream_record(
        read, metadata_flags=flags, search_flags=search_flags, multi_select=multi_select
    )
    assert parse_stream_message(Response.from_bytes(wire.to_bytes())) == read
    assert parse_tag_buffer(encode_tag_buffer([read, read], metadata_flags=flags)) == [read, read]


STREAM_TYPES = (TagRead, KeepAlive, ReaderWarning, StatsRecord, ReadingStarted, ReadingStopped)


def stream_or_frame_error(response: Response) -> object:
    try:
        return parse_stream_message(response)
    except FrameError as exc:
        return exc


@given(st.sampled_from([0x22, 0x2F, 0x29, 0x03]), st.integers(0, 0xFFFF), st.binary(max_size=80))
def test_stream_parsing_raises_only_frame_errors(opcode: int, status: int, data: bytes) -> None:
    result = stream_or_frame_error(Response(opcode, status, data))
    assert isinstance(result, (*STREAM_TYPES, FrameError))
    if opcode not in (0x22, 0x2F):
        assert isinstance(result, FrameError)


@given(st.sampled_from(STREAMED + BUFFERED), st.data())
def test_mutated_vectors_raise_only_frame_errors(
    vector: dict[str, Any], data: st.DataObject
) -> None:
    response = resp(vector["hex"])
    payload = bytearray(response.data)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(payload) - 1))
        payload[at] = data.draw(st.integers(0, 0xFF))
    mutated = bytes(payload[: data.draw(st.integers(0, len(payload)))])
    result = stream_or_frame_error(Response(0x22, 0, mutated))
    assert isinstance(result, (*STREAM_TYPES, FrameError))
    try:
        reads = parse_tag_buffer(Response(0x29, 0, mutated))
    except FrameError:
        return
    assert all(isinstance(read, TagRead) for read in reads)
