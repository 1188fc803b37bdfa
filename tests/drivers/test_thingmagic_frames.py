"""ThingMagic CRC and frame encoding against docs/drivers/thingmagic.md 1.2-1.3 and the captured
frames."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import EncodeError, FrameError
from drivers.thingmagic.crc import gen2_crc16, tm_crc, tm_crc_table
from drivers.thingmagic.frames import MAX_DATA_LEN, Request, Response

VECTORS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parents[1] / "vectors" / "thingmagic.json").read_text()
)


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def bitwise_tm_crc(data: bytes) -> int:
    # The bit-serial form from docs/drivers/thingmagic.md 1.3, written independently of the table
    # in crc.py.
    crc = 0xFFFF
    for byte in data:
        for i in range(7, -1, -1):
            top = crc & 0x8000
            crc = ((crc << 1) | ((byte >> i) & 1)) & 0xFFFF
            if top:
                crc ^= 0x1021
    return crc


def test_crc_check_value_and_smallest_frame() -> None:
    assert tm_crc(b"123456789") == 0xA69D
    # get version, FF 00 03 1D 0C: the CRC over LEN and opcode only.
    assert tm_crc(h("00 03")) == 0x1D0C


@given(st.binary(max_size=300))
def test_both_crc_forms_equal_the_bitwise_definition(data: bytes) -> None:
    assert tm_crc(data) == tm_crc_table(data) == bitwise_tm_crc(data)


def test_gen2_tag_crc_matches_a_real_tag() -> None:
    # docs/drivers/thingmagic.md 1.9: PC 3000 + EPC E200001B6909019817106766 carries StoredCRC 4C0D.
    assert gen2_crc16(h("30 00 E2 00 00 1B 69 09 01 98 17 10 67 66")) == 0x4C0D


@pytest.mark.parametrize("vector", [v for v in VECTORS if v["crc_ok"]], ids=lambda v: v["hex"][:20])
def test_every_good_vector_round_trips_in_its_direction(vector: dict[str, Any]) -> None:
    raw = h(vector["hex"])
    frame_type = Request if vector["direction"] == "host->module" else Response
    frame = frame_type.from_bytes(raw)
    assert frame.to_bytes() == raw
    assert frame.opcode == raw[2]


def test_bad_crc_vector_is_rejected() -> None:
    # data22_2, hand-edited in the 2024 capture (Test.ino @ 5c2478f): one byte differs.
    (bad,) = [v for v in VECTORS if not v["crc_ok"]]
    assert bad["source"]["var"] == "data22_2"
    with pytest.raises(FrameError, match="CRC"):
        Response.from_bytes(h(bad["hex"]))


def test_response_fields() -> None:
    # SparkFun log 1-Connect to serial port: current program = 0x52.
    resp = Response.from_bytes(h("FF 01 0C 00 00 52 63 03"))
    assert resp == Response(0x0C, 0x0000, b"\x52")
    # Status 0x0423 from the 2024 capture data28_3.
    assert Response.from_bytes(h("FF 00 28 04 23 25 89")).status == 0x0423


@pytest.mark.parametrize(
    "raw",
    [
        h("FF 00 03 1D"),  # short
        h("FE 00 03 1D 0C"),  # no header
        h("FF 01 03 1D 0C"),  # LEN disagrees with the size
        h("FF 00 03 1D 0D"),  # CRC
        h("FF F9 03") + bytes(0xF9) + h("00 00"),  # LEN beyond 0xF8
    ],
)
def test_request_from_bytes_rejects(raw: bytes) -> None:
    with pytest.raises(FrameError):
        Request.from_bytes(raw)


def test_encoding_rejects_impossible_fields() -> None:
    with pytest.raises(EncodeError):
        Request(0x100)
    with pytest.raises(EncodeError):
        Request(0x03, bytes(MAX_DATA_LEN + 1))
    with pytest.raises(EncodeError):
        Response(0x03, 0x10000)


opcodes = st.integers(0, 0xFF)
payloads = st.binary(max_size=MAX_DATA_LEN)


@given(opcodes, payloads)
def test_request_round_trip(opcode: int, data: bytes) -> None:
    raw = Request(opcode, data).to_bytes()
    assert len(raw) == len(data) + 5
    assert Request.from_bytes(raw) == Request(opcode, data)


@given(opcodes, st.integers(0, 0xFFFF), payloads)
def test_response_round_trip(opcode: int, status: int, data: bytes) -> None:
    raw = Response(opcode, status, data).to_bytes()
    assert len(raw) == len(data) + 7
    assert Response.from_bytes(raw) == Response(opcode, status, data)
