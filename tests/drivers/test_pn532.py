"""PN532 frames, decoders, commands and responses against the real vectors (pn532_hsu.json)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.errors import EncodeError, FrameError
from drivers.pn532 import (
    PN532_V1_6,
    Ack,
    Command,
    ErrorFrame,
    FirmwareVersion,
    InformationFrame,
    InListPassiveTargetResponse,
    Nack,
    Pn532CommandDecoder,
    Pn532Decoder,
    Pn532Frame,
    TypeATarget,
    parse_frame,
)
from drivers.pn532 import commands as cmd
from drivers.pn532.decoder import FrameScanner
from drivers.sentinel import NEED_DATA

VECTORS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parents[1] / "vectors" / "pn532_hsu.json").read_text()
)
D4, D5 = 0xD4, 0xD5


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def vector(meaning_start: str) -> bytes:
    (v,) = [v for v in VECTORS if v["meaning"].startswith(meaning_start) and "hex" in v]
    return h(v["hex"])


def decode(decoder: FrameScanner, *chunks: bytes) -> list[Pn532Frame]:
    frames: list[Pn532Frame] = []
    for chunk in chunks:
        decoder.receive_data(chunk)
        frames.extend(decoder.frames())
    return frames


def response(code: Command, params: str = "") -> InformationFrame:
    return InformationFrame(D5, code.response_code, h(params))


# --- every framed vector ------------------------------------------------------------------------

FRAMED = [v for v in VECTORS if "hex" in v]


@pytest.mark.parametrize("v", FRAMED, ids=lambda v: v["meaning"][:40])
def test_every_framed_vector_decodes_without_a_dropped_byte(v: dict[str, Any]) -> None:
    wire = h(v["hex"])
    decoder = Pn532CommandDecoder() if v["dir"] == "host->pn532" else Pn532Decoder()
    frames = decode(decoder, wire)
    assert frames
    assert decoder.stats.frames == len(frames)
    assert decoder.stats.discarded_bytes == 0
    assert decoder.pending().strip(b"\x00") == b""
    # Re-encoding gives back the vector, but for preamble and wake-up bytes that carry nothing.
    encoded = b"".join(f.to_bytes() for f in frames)
    assert encoded.lstrip(b"\x00") == wire.lstrip(b"\x55\x00")


@pytest.mark.parametrize("v", FRAMED, ids=lambda v: v["meaning"][:40])
def test_every_framed_vector_is_rejected_by_the_wrong_end(v: dict[str, Any]) -> None:
    wire = h(v["hex"])
    host_bound = v["dir"] != "host->pn532"
    right, wrong = (Pn532Decoder(), Pn532CommandDecoder())[:: 1 if host_bound else -1]
    # ACK and NACK mean the same thing both ways; everything else is for one end only.
    expected = [f for f in decode(right, wire) if isinstance(f, Ack | Nack)]
    assert decode(wrong, wire) == expected
    assert wrong.stats.malformed == right.stats.frames - len(expected)


def test_firmware_version_reply_is_pn532_v1_6() -> None:
    frames = decode(Pn532Decoder(), vector("ACK + GetFirmwareVersion"))
    assert frames[0] == Ack()
    reply = frames[1]
    assert isinstance(reply, InformationFrame)
    assert reply.code == Command.GET_FIRMWARE_VERSION.response_code
    firmware = FirmwareVersion.from_params(reply.params)
    assert firmware == PN532_V1_6
    assert firmware.name == "PN532 v1.6"


@pytest.mark.parametrize(
    ("meaning", "uid", "atqa", "sak", "ats"),
    [
        ("ACK + 1 target", "B0 86 4D 25", "00 04", 0x08, ""),
        ("ACK + Mifare 1K", "D0 BB E1 1A", "00 04", 0x08, ""),
        ("1 target UID 5CBBE5D5", "5C BB E5 D5", "00 04", 0x08, ""),
        ("1 target UID 24D34F59", "24 D3 4F 59", "00 04", 0x08, ""),
        (
            "ACK + ISO14443-4",
            "FD E6 08 99",
            "00 04",
            0x28,
            "10 78 80 90 02 20 90 00 00 00 00 00 FD E6 08 99",
        ),
    ],
)
def test_in_list_passive_target_captures(
    meaning: str, uid: str, atqa: str, sak: int, ats: str
) -> None:
    (reply,) = [f for f in decode(Pn532Decoder(), vector(meaning)) if f != Ack()]
    assert isinstance(reply, InformationFrame)
    assert reply.code == 0x4B
    (target,) = InListPassiveTargetResponse.from_params(reply.params).targets
    assert (target.tg, target.uid, target.atqa, target.sak, target.ats) == (
        1,
        h(uid),
        h(atqa),
        sak,
        h(ats),
    )
    assert target.raw_id == uid.replace(" ", "")
    assert InListPassiveTargetResponse((target,)).to_params() == reply.params


def test_in_list_passive_target_no_card() -> None:
    frames = decode(Pn532Decoder(), vector("ACK + InListPassiveTarget response NbTg=0"))
    assert frames[0] == Ack()
    assert isinstance(frames[1], InformationFrame)
    assert InListPassiveTargetResponse.from_params(frames[1].params).targets == ()


def test_libnfc_spi_capture_payload() -> None:
    (v,) = [v for v in VECTORS if "payload_hex" in v]
    (target,) = InListPassiveTargetResponse.from_params(h(v["payload_hex"])).targets
    assert target.raw_id == "1ADA7444"
    assert target.atqa == h("00 04")
    assert target.sak == 0x08


def test_nfcpy_seven_byte_uid() -> None:
    (v,) = [v for v in VECTORS if "rsp_data_hex" in v]
    data = h(v["rsp_data_hex"])
    assert data[0] == 0x4B
    (target,) = InListPassiveTargetResponse.from_params(data[1:]).targets
    assert target.raw_id == "0416C6C2D73881"
    assert target.atqa == h("00 44")
    assert target.sak == 0x00


def test_syntax_error_frame() -> None:
    assert decode(Pn532Decoder(), vector("syntax error frame")) == [ErrorFrame()]
    assert parse_frame(vector("syntax error frame")) == ErrorFrame()


# --- commands encode byte-exact to the captures ---------------------------------------------------


@pytest.mark.parametrize(
    ("encoded", "meaning"),
    [
        (cmd.get_firmware_version(), "GetFirmwareVersion"),
        (cmd.sam_configuration(), "SAMConfiguration normal, no IRQ"),
        (cmd.sam_configuration(use_irq=True), "SAMConfiguration mode=1 timeout=0 irq=1"),
        (cmd.in_list_passive_target(), "InListPassiveTarget MaxTg=1 BrTy=0"),
        (cmd.in_deselect(), "InDeselect Tg=0"),
    ],
)
def test_commands_match_captured_frames(encoded: bytes, meaning: str) -> None:
    assert encoded == vector(meaning)


def test_max_retries_matches_nfcpy() -> None:
    # nfcpy: rf_configuration(0x05, "\x01\x00\x01") -> D4 32 05 01 00 01.
    assert parse_frame(cmd.rf_configuration_max_retries()) == InformationFrame(
        D4, 0x32, h("05 01 00 01")
    )


def test_in_release_frame() -> None:
    assert cmd.in_release(1) == h("00 00 FF 03 FD D4 52 01 D9 00")  # D4 + 52 + 01 + D9 = 0x200


def test_wakeup_then_sam_like_dfrobot() -> None:
    # DFRobot sends 55 55, zeros, then SAMConfiguration with the mode only; the chip-side
    # decoder finds the command behind the wake-up bytes without counting them as garbage.
    decoder = Pn532CommandDecoder()
    wire = vector("HSU wake-up")
    assert decode(decoder, wire) == [InformationFrame(D4, 0x14, h("01"))]
    assert decoder.stats.discarded_bytes == 0
    assert decode(Pn532CommandDecoder(), cmd.WAKEUP + cmd.sam_configuration()) == [
        InformationFrame(D4, 0x14, h("01 00 00"))
    ]


def test_command_arguments_are_checked() -> None:
    with pytest.raises(EncodeError):
        cmd.in_list_passive_target(max_tg=3)
    with pytest.raises(EncodeError):
        cmd.rf_configuration_max_retries(mx_rty_atr=256)
    with pytest.raises(EncodeError):
        InformationFrame(0x7F, 0x02)
    with pytest.raises(EncodeError):
        InformationFrame(D4, 0x40, bytes(264))


# --- rejection and resynchronisation --------------------------------------------------------------

GFV_REPLY = vector("ACK + GetFirmwareVersion")  # ACK, then the response


def corrupt(wire: bytes, index: int) -> bytes:
    return wire[:index] + bytes([wire[index] ^ 0x01]) + wire[index + 1 :]


@pytest.mark.parametrize(
    ("index", "counter"),
    [
        (9, "bad_checksum"),  # LEN of the response: LCS no longer matches
        (10, "bad_checksum"),  # LCS
        (13, "bad_checksum"),  # a data byte: DCS no longer matches
        (17, "bad_checksum"),  # DCS
    ],
)
def test_corrupted_response_is_counted_and_the_next_one_recovered(index: int, counter: str) -> None:
    decoder = Pn532Decoder()
    frames = decode(decoder, corrupt(GFV_REPLY, index) + GFV_REPLY)
    assert frames == [Ack(), Ack(), response(Command.GET_FIRMWARE_VERSION, "32 01 06 07")]
    assert getattr(decoder.stats, counter) >= 1


def test_zero_length_and_overlong_frames_are_bad_length() -> None:
    decoder = Pn532Decoder()
    overlong = h("00 00 FF FF FF 01 0A F5")  # LEN 266 > 265
    zero = h("00 00 FF FF FF 00 00 00")
    frames = decode(decoder, overlong + zero + vector("syntax error frame"))
    assert frames == [ErrorFrame()]
    assert decoder.stats.bad_length == 2


def test_response_without_command_code_is_malformed() -> None:
    decoder = Pn532Decoder()
    assert decode(decoder, h("00 00 FF 01 FF D5 2B 00") + ACK_BYTES) == [Ack()]
    assert decoder.stats.malformed == 1


ACK_BYTES = h("00 00 FF 00 FF 00")


def test_garbage_is_counted_but_preamble_zeros_are_not() -> None:
    decoder = Pn532Decoder()
    frames = decode(decoder, h("00 00 00 00 00") + ACK_BYTES + h("13 37 00 00") + ACK_BYTES)
    assert frames == [Ack(), Ack()]
    assert decoder.stats.discarded_bytes == 2


def test_split_start_code_waits() -> None:
    decoder = Pn532Decoder()
    decoder.receive_data(h("AA 00"))
    assert decoder.next_frame() is NEED_DATA
    decoder.receive_data(h("FF 00 FF 00"))
    assert decoder.next_frame() == Ack()


def test_parse_frame_rejects_anything_but_one_frame() -> None:
    with pytest.raises(FrameError):
        parse_frame(ACK_BYTES + ACK_BYTES)
    with pytest.raises(FrameError):
        parse_frame(h("FF 00 FF 00"))
    with pytest.raises(FrameError):
        InformationFrame.from_bytes(ACK_BYTES)
    with pytest.raises(FrameError):
        InformationFrame.from_bytes(corrupt(cmd.get_firmware_version(), 7))


@pytest.mark.parametrize(
    "params",
    [
        "",  # no NbTg
        "03",  # NbTg > 2
        "01 01 00 04 08",  # cut in the header
        "01 01 00 04 08 04 B0 86",  # cut in the UID
        "01 01 00 04 08 05 B0 86 4D 25 26",  # 5-byte UID
        "01 01 00 04 08 04 B0 86 4D 25 FF",  # trailing byte
        "01 01 00 04 28 04 B0 86 4D 25 05 78",  # ATS shorter than its TL
    ],
)
def test_malformed_in_list_passive_target_data_raise_frame_error(params: str) -> None:
    with pytest.raises(FrameError):
        InListPassiveTargetResponse.from_params(h(params))


def test_firmware_version_needs_four_bytes() -> None:
    with pytest.raises(FrameError):
        FirmwareVersion.from_params(h("32 01 06"))


# --- properties ---------------------------------------------------------------------------------

info_frames = st.builds(
    InformationFrame,
    tfi=st.just(D5),
    code=st.integers(0, 0xFF),
    params=st.binary(max_size=300).map(lambda b: b[:263]),
)
host_frames = st.one_of(st.just(Ack()), st.just(Nack()), st.just(ErrorFrame()), info_frames)


@given(host_frames)
def test_round_trip(frame: Pn532Frame) -> None:
    assert parse_frame(frame.to_bytes()) == frame
    assert decode(Pn532Decoder(), frame.to_bytes()) == [frame]


@given(st.integers(0, 0xFF), st.binary(min_size=254, max_size=263))
def test_long_frames_use_the_extended_layout(code: int, params: bytes) -> None:
    wire = InformationFrame(D5, code, params).to_bytes()
    assert wire[3:5] == h("FF FF")
    assert int.from_bytes(wire[5:7], "big") == len(params) + 2


def split_randomly(data: bytes, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(len(data) + 1), k=min(len(data) + 1, rng.randint(0, 8))))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


# Byte-at-a-time decoding of up to 1.6 kB can outrun the 200 ms deadline on a loaded machine.
@settings(deadline=None)
@given(st.lists(host_frames, max_size=6), st.integers(0, 2**32), st.integers(0, 4))
def test_chunking_invariance(frames: list[Pn532Frame], seed: int, preamble: int) -> None:
    wire = b"".join(bytes(preamble) + f.to_bytes() for f in frames)
    assert decode(Pn532Decoder(), wire) == frames
    assert decode(Pn532Decoder(), *(wire[i : i + 1] for i in range(len(wire)))) == frames
    assert decode(Pn532Decoder(), *split_randomly(wire, seed)) == frames
    decoder = Pn532Decoder()
    assert decode(decoder, wire + h("00 00 FF 06 FA D5 03")) == frames
    assert decoder.next_frame() is NEED_DATA


garbage = st.binary(max_size=30).map(lambda b: b.replace(b"\xff", b""))


@given(st.lists(st.tuples(garbage, host_frames), max_size=5))
def test_frames_embedded_in_garbage_are_recovered(items: list[tuple[bytes, Pn532Frame]]) -> None:
    # Garbage without 0xFF cannot hold a start code; frames are then all found, in order.
    wire = b"".join(g + f.to_bytes() for g, f in items)
    decoder = Pn532Decoder()
    assert decode(decoder, wire) == [f for _, f in items]
    assert decoder.stats.discarded_bytes <= sum(len(g) for g, _ in items)


@given(st.lists(st.binary(max_size=80), max_size=8))
def test_arbitrary_bytes_never_raise(chunks: list[bytes]) -> None:
    for decoder in (Pn532Decoder(), Pn532CommandDecoder()):
        frames = decode(decoder, *chunks)
        assert decoder.stats.frames == len(frames)
        assert decoder.stats.discarded_bytes <= sum(len(c) for c in chunks)


@given(st.binary(max_size=40))
def test_arbitrary_response_data_parse_or_raise_frame_error(params: bytes) -> None:
    try:
        response_ = InListPassiveTargetResponse.from_params(params)
    except FrameError:
        return
    assert response_.to_params() == params


uids = st.sampled_from([4, 7, 10]).flatmap(lambda n: st.binary(min_size=n, max_size=n))


@given(st.lists(st.tuples(uids, st.integers(0, 0xFF), st.booleans()), max_size=2))
def test_target_list_round_trip(specs: list[tuple[bytes, int, bool]]) -> None:
    targets = tuple(
        TypeATarget(
            tg=i + 1,
            atqa=h("00 44"),
            sak=(sak | 0x20) if with_ats else (sak & ~0x20),
            uid=uid,
            ats=h("05 78 80 90 02") if with_ats else b"",
        )
        for i, (uid, sak, with_ats) in enumerate(specs)
    )
    params = InListPassiveTargetResponse(targets).to_params()
    assert InListPassiveTargetResponse.from_params(params).targets == targets
