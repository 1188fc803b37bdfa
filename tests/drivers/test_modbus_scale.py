"""Modbus scale driver against the published requests (tests/vectors/modbus_weight.json)."""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pymodbus.pdu import ExceptionResponse, ModbusPDU
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersResponse,
    ReadInputRegistersResponse,
    WriteMultipleRegistersResponse,
)

from drivers.errors import DeviceError, EncodeError, FrameError
from drivers.modbus_scale import (
    FLINTEC_FT13,
    LAUMAS,
    ReadFunction,
    RegisterMap,
    RtuDecoder,
    Scale,
    WeightFormat,
    encode_adu,
    generic_channel,
    preset,
    raw_from_registers,
    registers_from_grams,
)
from drivers.sentinel import NEED_DATA

VECTORS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parents[1] / "vectors" / "modbus_weight.json").read_text()
)


def wire(text: str) -> bytes:
    return bytes.fromhex(text.replace(",", " "))


def vector(meaning_start: str) -> bytes:
    (v,) = [v for v in VECTORS if v["meaning"].startswith(meaning_start)]
    return wire(v["hex"])


def decode(*chunks: bytes, is_server: bool) -> tuple[list[ModbusPDU], RtuDecoder]:
    decoder = RtuDecoder(is_server=is_server)
    out: list[ModbusPDU] = []
    for chunk in chunks:
        decoder.receive_data(chunk)
        while (pdu := decoder.next_frame()) is not NEED_DATA:
            out.append(pdu)
    return out, decoder


def response(registers: list[int], *, dev_id: int = 1, fc: int = 3) -> ModbusPDU:
    cls = ReadHoldingRegistersResponse if fc == 3 else ReadInputRegistersResponse
    return cls(registers=registers, dev_id=dev_id)


# --- published requests ---------------------------------------------------------------------------


SINGLE = [v for v in VECTORS if "hex" in v]


@pytest.mark.parametrize("v", [v for v in SINGLE if v["valid"]], ids=lambda v: v["hex"])
def test_every_valid_published_request_decodes_and_reencodes_identically(v: dict[str, Any]) -> None:
    (pdu,), decoder = decode(wire(v["hex"]), is_server=True)
    assert encode_adu(pdu) == wire(v["hex"])
    assert decoder.stats.frames == 1


@pytest.mark.parametrize("v", [v for v in SINGLE if not v["valid"]], ids=lambda v: v["hex"])
def test_invalid_published_requests_are_rejected_by_crc(v: dict[str, Any]) -> None:
    frames, decoder = decode(wire(v["hex"]), is_server=True)
    assert frames == []
    assert decoder.stats.bad_checksum >= 1


def test_flintec_reset_with_the_corrected_crc_decodes() -> None:
    # The manual prints A3 33; docs/drivers/modbus-scale.md 5.2 gives the correct bytes 67 1E.
    (pdu,), _ = decode(wire("01 10 00 08 00 01 02 00 09 67 1E"), is_server=True)
    assert list(pdu.registers) == [9]


def test_flintec_preset_builds_the_manual_frames() -> None:
    scale = Scale(FLINTEC_FT13, device_id=1)
    assert encode_adu(scale.read_request()) == vector("Flintec FT-13: read weight")
    assert encode_adu(scale.tare_request()) == vector("Flintec FT-13: FC16 write command")


def test_generic_preset_builds_the_module_frames_for_every_listed_channel() -> None:
    (v,) = [v for v in VECTORS if "hexes" in v]
    listed = [wire(h) for h in v["hexes"]]
    built = {encode_adu(Scale(generic_channel(n)).read_request()) for n in range(1, 17)}
    assert set(listed) <= built


def test_laumas_gross_read_starts_at_the_published_address() -> None:
    # Published: FC03 of 4 registers at 7 (gross H/L, net H/L); we read the gross pair only.
    published, _ = decode(vector("FC03 read 4 regs at PDU addr 7"), is_server=True)
    ours = Scale(LAUMAS).read_request()
    assert (ours.address, ours.count) == (published[0].address, 2)


def test_requests_come_out_of_any_chunking_and_garbage_before_them_is_skipped() -> None:
    # Several requests in one read, which pymodbus's own handleFrame would cut to the first.
    stream = b"\x00\x00\x00" + b"".join(wire(v["hex"]) for v in SINGLE if v["valid"])
    whole, decoder = decode(stream, is_server=True)
    assert decoder.stats.discarded_bytes == 3
    bytewise, _ = decode(*[stream[i : i + 1] for i in range(len(stream))], is_server=True)
    assert [encode_adu(p) for p in whole] == [encode_adu(p) for p in bytewise]
    assert len(whole) == len([v for v in SINGLE if v["valid"]])


# --- conversion -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("registers", "raw"),
    # docs/drivers/modbus-scale.md 5.1, checked there
    [([0x0000, 0x04D2], 1234), ([0xFFFF, 0xFB2E], -1234)],
)
def test_int32_high_word_first(registers: list[int], raw: int) -> None:
    assert raw_from_registers(registers, LAUMAS) == raw


def test_decimals_and_unit_scale_to_grams() -> None:
    kg_2dp = dataclasses.replace(LAUMAS, decimals=2, unit_g=1000.0)
    reading = Scale(kg_2dp).parse_reading(response([0x0000, 0x04D2]), now=5.0)
    assert reading.grams == pytest.approx(12340.0)
    assert (reading.raw, reading.decimals, reading.t) == (1234, 2, 5.0)


@given(st.integers(-(2**31), 2**31 - 1), st.sampled_from(["big", "little"]))
def test_int32_round_trip(raw: int, order: str) -> None:
    regmap = dataclasses.replace(LAUMAS, word_order=order)
    assert raw_from_registers(registers_from_grams(raw, regmap, 0), regmap) == raw


@given(st.floats(-1e6, 1e6))
def test_float32_round_trip(grams: float) -> None:
    regmap = RegisterMap("eagle", weight_address=0x1000, format=WeightFormat.FLOAT32)
    back = raw_from_registers(registers_from_grams(grams, regmap, 0), regmap)
    assert back == pytest.approx(grams, rel=1e-6, abs=1e-6)


def test_weight_beyond_int32_is_an_encode_error() -> None:
    with pytest.raises(EncodeError):
        registers_from_grams(3e9, LAUMAS, 0)


# --- responses and errors -------------------------------------------------------------------------


def test_a_response_from_bytes_in_any_chunking_gives_the_reading() -> None:
    adu = encode_adu(response([0xFFFF, 0xFB2E]))
    assert adu[:3] == bytes.fromhex("01 03 04")
    for chunks in ([adu], [adu[i : i + 1] for i in range(len(adu))], [adu[:2], adu[2:]]):
        (pdu,), _ = decode(*chunks, is_server=False)
        assert Scale(LAUMAS).parse_reading(pdu, 0.0).grams == -1234


def test_modbus_exception_is_a_device_error_with_its_code() -> None:
    with pytest.raises(DeviceError) as info:
        Scale(LAUMAS).parse_reading(ExceptionResponse(3, 2, device_id=1), 0.0)
    assert info.value.status == 2


@pytest.mark.parametrize(
    "bad",
    [
        response([1, 2, 3]),
        response([1, 2], dev_id=7),
        response([1, 2], fc=4),  # asked for holding registers
        WriteMultipleRegistersResponse(address=5, count=1, dev_id=1),
    ],
)
def test_wrong_shaped_replies_are_frame_errors(bad: ModbusPDU) -> None:
    with pytest.raises(FrameError):
        Scale(LAUMAS).parse_reading(bad, 0.0)


def test_input_register_maps_read_with_fc04() -> None:
    regmap = dataclasses.replace(LAUMAS, function=ReadFunction.INPUT)
    assert Scale(regmap).read_request().function_code == 4
    assert Scale(regmap).parse_reading(response([0, 7], fc=4), 0.0).grams == 7


def test_tare_needs_a_configured_code() -> None:
    with pytest.raises(EncodeError):
        Scale(LAUMAS).tare_request()
    with pytest.raises(EncodeError):
        Scale(generic_channel(1)).tare_request()
    laumas = dataclasses.replace(LAUMAS, tare_command=7)
    assert encode_adu(Scale(laumas, use_fc06=True).tare_request())[:6] == bytes.fromhex(
        "01 06 00 05 00 07"
    )


def test_write_acknowledgement_is_checked() -> None:
    scale = Scale(FLINTEC_FT13)
    scale.check_write(WriteMultipleRegistersResponse(address=8, count=1, dev_id=1))
    with pytest.raises(DeviceError):
        scale.check_write(ExceptionResponse(16, 3, device_id=1))
    with pytest.raises(FrameError):
        scale.check_write(response([0, 0]))


def test_decimals_register_is_read_once_and_applied() -> None:
    scale = Scale(dataclasses.replace(LAUMAS, decimals_address=13))
    request = scale.decimals_request()
    assert request is not None
    assert (request.address, request.count) == (13, 1)
    assert scale.parse_decimals(response([3])) == 3
    assert scale.parse_reading(response([0, 1500]), 0.0).grams == pytest.approx(1.5)
    with pytest.raises(FrameError):
        scale.parse_decimals(response([9]))
    assert Scale(LAUMAS).decimals_request() is None


@pytest.mark.parametrize(
    "bad",
    [
        lambda: generic_channel(0),
        lambda: generic_channel(17),
        lambda: Scale(LAUMAS, device_id=0),
        lambda: Scale(LAUMAS, device_id=248),
        lambda: RegisterMap("x", weight_address=0xFFFF),
        lambda: RegisterMap("x", weight_address=0, decimals=7),
    ],
)
def test_impossible_configuration_is_an_encode_error(bad: object) -> None:
    with pytest.raises(EncodeError):
        bad()  # type: ignore[operator]


@given(st.binary(max_size=200), st.lists(st.integers(0, 200), max_size=6), st.booleans())
def test_arbitrary_bytes_never_raise_and_decode_the_same_in_any_chunking(
    data: bytes, cuts: list[int], is_server: bool
) -> None:
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    chunked, _ = decode(*[data[a:b] for a, b in itertools.pairwise(points)], is_server=is_server)
    whole, _ = decode(data, is_server=is_server)
    assert [encode_adu(p) for p in chunked] == [encode_adu(p) for p in whole]


def test_config_names_pick_the_presets() -> None:
    assert preset("generic", channel=3) == generic_channel(3)
    assert preset("laumas") is LAUMAS
    assert preset("flintec") is FLINTEC_FT13
    with pytest.raises(EncodeError):
        preset("dini")
