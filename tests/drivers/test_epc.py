"""SGTIN-96 against the GS1 Tag Data Standard's own example and against the simulator's encoder."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.epc import EpcError, decode_sgtin96, encode_sgtin96, gs1_check_digit
from firmware_sim.epc import Sgtin as SimSgtin

# GS1 EPC Tag Data Standard 2.1, section 14.5.1 example (and TDS appendix E):
# urn:epc:tag:sgtin-96:3.0614141.812345.6789 = 3074257BF7194E4000001A85
# header | filter 3, partition 5 | prefix 0614141 (24 bits) | item 812345 (20 bits) | serial 6789
TDS_EXAMPLE = bytes.fromhex("30 74 25 7B F7 19 4E 40 00 00 1A 85")


def test_tds_example_decodes() -> None:
    sgtin = decode_sgtin96(TDS_EXAMPLE)
    assert sgtin is not None
    assert sgtin.gtin14 == "80614141123458"
    assert (sgtin.serial, sgtin.filter, sgtin.company_prefix) == ("6789", 3, "0614141")


def test_tds_example_encodes() -> None:
    assert encode_sgtin96("80614141123458", 6789, company_prefix_digits=7, filter=3) == TDS_EXAMPLE


@pytest.mark.parametrize(
    ("digits", "check"),
    [("8061414112345", 8), ("0001234560001", 2), ("629104150021", 3)],  # GS1 GenSpec examples
)
def test_check_digit(digits: str, check: int) -> None:
    assert gs1_check_digit(digits) == check


@pytest.mark.parametrize(
    "epc",
    [
        bytes.fromhex("31 74 25 7B F7 19 4E 40 00 00 1A 85"),  # header 0x31 is not SGTIN-96
        bytes.fromhex("30 7C 25 7B F7 19 4E 40 00 00 1A 85"),  # partition 7
        bytes.fromhex("30 74 25 7B F7 19 4E 40 00 00 1A"),  # 88 bits
        bytes.fromhex("30 77 FF FF FF 19 4E 40 00 00 1A 85"),  # prefix 16777215 > 7 digits
        bytes.fromhex("C0 FF EE 00 00 00 00 00 00 00 00 01"),  # a loyalty card EPC
    ],
)
def test_not_an_sgtin96(epc: bytes) -> None:
    assert decode_sgtin96(epc) is None


@pytest.mark.parametrize(
    ("gtin", "digits"),
    [("80614141123459", 7), ("8061414112345", 7), ("80614141123458", 5), ("8061414112345X", 7)],
)
def test_encode_refuses(gtin: str, digits: int) -> None:
    with pytest.raises(EpcError):
        encode_sgtin96(gtin, 1, company_prefix_digits=digits)


@st.composite
def gtins(draw: st.DrawFn) -> tuple[str, int]:
    digits = draw(st.integers(6, 12))
    body = "".join(draw(st.lists(st.sampled_from("0123456789"), min_size=13, max_size=13)))
    return body + str(gs1_check_digit(body)), digits


@given(gtins(), st.integers(0, (1 << 38) - 1), st.integers(0, 7))
def test_round_trip(gtin_digits: tuple[str, int], serial: int, filter_value: int) -> None:
    gtin, digits = gtin_digits
    epc = encode_sgtin96(gtin, serial, company_prefix_digits=digits, filter=filter_value)
    sgtin = decode_sgtin96(epc)
    assert sgtin is not None
    assert (sgtin.gtin14, sgtin.serial, sgtin.filter) == (gtin, str(serial), filter_value)
    assert sgtin.company_prefix == gtin[1 : 1 + digits]


@given(gtins(), st.integers(0, (1 << 38) - 1))
def test_agrees_with_the_simulator(gtin_digits: tuple[str, int], serial: int) -> None:
    gtin, digits = gtin_digits
    sim = SimSgtin(1, gtin[1 : 1 + digits], gtin[0] + gtin[1 + digits : 13], serial)
    assert encode_sgtin96(gtin, serial, company_prefix_digits=digits).hex().upper() == sim.to_hex()


@given(st.binary(min_size=12, max_size=12))
def test_any_96_bits_decode_or_none(epc: bytes) -> None:
    sgtin = decode_sgtin96(epc)
    if sgtin is not None:
        again = encode_sgtin96(
            sgtin.gtin14, int(sgtin.serial), company_prefix_digits=len(sgtin.company_prefix),
            filter=sgtin.filter,
        )  # fmt: skip
        assert again == epc
