"""EM4100 frames and decoder against the real vectors (tests/vectors/em4100_uart.json)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.em4100 import Em4100Decoder, Em4100Frame
from drivers.errors import EncodeError, FrameError
from drivers.sentinel import NEED_DATA

VECTORS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parents[1] / "vectors" / "em4100_uart.json").read_text()
)


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def rdm6300(payload: str) -> bytes:
    return b"\x02" + payload.encode() + b"\x03"


def id12(payload: str) -> bytes:
    return b"\x02" + payload.encode() + b"\r\n\x03"


def decode(*chunks: bytes) -> tuple[list[Em4100Frame], Em4100Decoder]:
    decoder = Em4100Decoder()
    frames: list[Em4100Frame] = []
    for chunk in chunks:
        decoder.receive_data(chunk)
        frames.extend(decoder.frames())
    return frames, decoder


def vectors_with(key: str, valid: object = True) -> list[dict[str, Any]]:
    return [v for v in VECTORS if key in v and v["valid"] == valid]


# --- real vectors -------------------------------------------------------------------------------


def test_captured_rdm6300_frame_decodes_to_the_published_fields() -> None:
    # arduino-esp32 issue #1405: the 14 bytes as captured, repeated back to back.
    (vector,) = vectors_with("raw_hex")
    wire = h(vector["raw_hex"])
    frames, decoder = decode(wire * 3)
    assert [f.tag_id for f in frames] == [vector["expected"]["tag_id_u32"]] * 3
    assert frames[0].version == int(vector["expected"]["version"], 16)
    assert frames[0].checksum == int(vector["expected"]["checksum"], 16)
    assert frames[0].raw_id == "0D00319CD0"
    assert frames[0].to_bytes("rdm6300") == wire
    assert decoder.stats.frames == 3
    assert decoder.stats.discarded_bytes == 0


@pytest.mark.parametrize("vector", vectors_with("ascii_payload"), ids=lambda v: v["ascii_payload"])
@pytest.mark.parametrize("framing", [rdm6300, id12])
def test_valid_payloads_decode_in_both_framings(vector: dict[str, Any], framing: Any) -> None:
    payload: str = vector["ascii_payload"]
    frames, _ = decode(framing(payload))
    (frame,) = frames
    assert frame.raw_id == payload[:10]
    expected = vector.get("expected", {})
    if "version" in expected:
        assert frame.version == int(expected["version"], 16)
    if "tag_id_u32" in expected:
        assert frame.tag_id == expected["tag_id_u32"]
    if "printed_on_card" in expected:
        assert frame.card_number == expected["printed_on_card"]
    assert frame.to_bytes("id12" if framing is id12 else "rdm6300") == framing(payload)


def test_python_rdm6300_unit_test_payloads() -> None:
    (vector,) = vectors_with("expected_tag_ids")
    wire = b"".join(rdm6300(p) for p in vector["ascii_payloads"])
    frames, _ = decode(wire)
    assert [f.tag_id for f in frames] == vector["expected_tag_ids"]


def test_spurious_tasmota_ids_pass_the_weak_checksum() -> None:
    # Tasmota issue #9522: read with no card present, yet checksum-valid. The decoder cannot tell;
    # the gateway's debounce has to (docs/drivers/em4100.md 2.3).
    (vector,) = [v for v in VECTORS if "Tasmota" in v.get("reader", "")]
    frames, decoder = decode(b"".join(rdm6300(p) for p in vector["ascii_payloads"]))
    assert [f.raw_id for f in frames] == [p[:10] for p in vector["ascii_payloads"]]
    assert decoder.stats.bad_checksum == 0


def test_id12la_capture_from_harp_firmware_comment() -> None:
    (vector,) = vectors_with("frames_as_logged")
    logged: str = vector["frames_as_logged"]
    # The comment writes STX/ETX as [02]/[03] and CR LF as \r\n; the two spaces between two
    # groups of frames are kept as line garbage the decoder must skip.
    wire = logged.replace("[02]", "\x02").replace("[03]", "\x03").replace("\\r\\n", "\r\n").encode()
    frames, decoder = decode(wire)
    assert [f.raw_id for f in frames] == [
        "000C845A99",
        "000C845A99",
        "0077D1AD00",
        "000C845A77",
        "0210000017",
        "000C845A7E",
        "000C845A79",
        "000C845A79",
    ]
    assert decoder.stats.discarded_bytes == 2
    assert all(len(f.to_bytes("id12")) == 16 for f in frames)


def test_captured_short_frame_with_non_hex_byte_is_rejected_and_counted() -> None:
    # ESPHome issue #3610: 13 bytes with '<' where the checksum should be.
    (vector,) = vectors_with("raw_hex", valid=False)
    bad = h(vector["raw_hex"])
    good = rdm6300("0D00319CD070")
    frames, decoder = decode(bad, good)
    assert [f.raw_id for f in frames] == ["0D00319CD0"]
    assert decoder.stats.malformed == 1
    assert decoder.stats.discarded_bytes == len(bad)
    with pytest.raises(FrameError):
        Em4100Frame.from_bytes(bad)


@pytest.mark.parametrize("vector", vectors_with("ascii_payload", False), ids=lambda v: v["source"])
def test_bad_checksum_payloads_are_rejected_and_counted(vector: dict[str, Any]) -> None:
    bad = rdm6300(vector["ascii_payload"])
    frames, decoder = decode(bad, rdm6300("31005DA05D91"))
    assert [f.raw_id for f in frames] == ["31005DA05D"]
    assert decoder.stats.bad_checksum == 1
    with pytest.raises(FrameError):
        Em4100Frame.from_bytes(bad)


# --- hand-made broken frames -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wire", "counter"),
    [
        (b"\x02" + b"0D00319CD070" + b"\x04", "bad_length"),  # no ETX
        (b"\x02" + b"0D00319CD070" + b"\r\x03", "bad_length"),  # CR without LF
        (b"\x02" + b"0D00319CD070" + b"\r\n\x04", "bad_length"),  # CR LF, then no ETX
        (b"\x02" + b"0D0031", "bad_length"),  # cut short by the next frame's STX
        (b"\x02" + b"0D00319CD0G0" + b"\x03", "malformed"),
        (b"\x02" + b"0D00319CD071" + b"\x03", "bad_checksum"),
    ],
)
def test_broken_frame_is_skipped_and_the_next_one_recovered(wire: bytes, counter: str) -> None:
    frames, decoder = decode(wire + rdm6300("1F00644BB686"))
    assert [f.raw_id for f in frames] == ["1F00644BB6"]
    assert getattr(decoder.stats, counter) == 1
    assert decoder.stats.frames == 1


def test_lower_case_hex_is_accepted() -> None:
    frames, _ = decode(rdm6300("0d00319cd070"))
    assert [f.raw_id for f in frames] == ["0D00319CD0"]


def test_incomplete_frame_waits_for_more() -> None:
    wire = id12("0D00319CD070")
    decoder = Em4100Decoder()
    decoder.receive_data(wire[:-1])
    assert decoder.next_frame() is NEED_DATA
    decoder.receive_data(wire[-1:])
    assert decoder.next_frame() == Em4100Frame(0x0D, 3251408)


def test_garbage_without_stx_is_dropped_not_kept() -> None:
    frames, decoder = decode(bytes(range(0x30, 0x80)) * 100)
    assert frames == []
    assert decoder.stats.discarded_bytes == 0x50 * 100


def test_encoding_rejects_out_of_range_fields() -> None:
    with pytest.raises(EncodeError):
        Em4100Frame(version=0x100, tag_id=0)
    with pytest.raises(EncodeError):
        Em4100Frame(version=0, tag_id=1 << 32)
    with pytest.raises(EncodeError):
        Em4100Frame.from_raw_id("0D00319CD")


def test_from_raw_id_inverts_raw_id() -> None:
    assert Em4100Frame.from_raw_id("0d00319cd0") == Em4100Frame(0x0D, 3251408)


# --- properties ---------------------------------------------------------------------------------

frames_st = st.builds(Em4100Frame, version=st.integers(0, 0xFF), tag_id=st.integers(0, 0xFFFF_FFFF))
styles = st.sampled_from(["rdm6300", "id12"])


@given(frames_st, styles)
def test_round_trip(frame: Em4100Frame, style: Any) -> None:
    wire = frame.to_bytes(style)
    assert Em4100Frame.from_bytes(wire) == frame
    assert Em4100Frame.from_raw_id(frame.raw_id) == frame
    assert decode(wire)[0] == [frame]


def split_randomly(data: bytes, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(len(data) + 1), k=min(len(data) + 1, rng.randint(0, 8))))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


@settings(deadline=None)  # byte-at-a-time decoding; no deadline flakes on a loaded machine
@given(st.lists(st.tuples(frames_st, styles), max_size=8), st.integers(0, 2**32))
def test_chunking_invariance(items: list[tuple[Em4100Frame, Any]], seed: int) -> None:
    wire = b"".join(f.to_bytes(s) for f, s in items)
    expected = [f for f, _ in items]
    assert decode(wire)[0] == expected
    assert decode(*(wire[i : i + 1] for i in range(len(wire))))[0] == expected
    assert decode(*split_randomly(wire, seed))[0] == expected
    # Trailing bytes of a frame still in flight change nothing about those before it.
    frames, decoder = decode(wire + b"\x020D0031")
    assert frames == expected
    assert decoder.next_frame() is NEED_DATA


garbage_st = st.binary(max_size=40).map(lambda b: b.replace(b"\x02", b""))


@given(st.lists(st.tuples(garbage_st, frames_st, styles), max_size=6), garbage_st)
def test_frames_embedded_in_garbage_are_recovered(
    items: list[tuple[bytes, Em4100Frame, Any]], tail: bytes
) -> None:
    wire = b"".join(g + f.to_bytes(s) for g, f, s in items) + tail
    frames, decoder = decode(wire)
    assert frames == [f for _, f, _ in items]
    assert decoder.stats.discarded_bytes >= sum(len(g) for g, _, _ in items)


@given(st.lists(st.binary(max_size=64), max_size=8))
def test_arbitrary_bytes_never_raise(chunks: list[bytes]) -> None:
    frames, decoder = decode(*chunks)
    wire = b"".join(chunks)
    assert decoder.stats.frames == len(frames)
    assert decoder.stats.discarded_bytes <= len(wire)
    for frame in frames:
        upper = (frame.to_bytes("rdm6300")[:-1], frame.to_bytes("id12")[:-3])
        assert any(u.upper() in wire.upper() for u in upper)


@given(st.binary(max_size=64).map(lambda b: b"\x02" + b))
def test_a_frame_after_arbitrary_noise_is_never_lost(noise: bytes) -> None:
    # Whatever broken frame the noise ends in, the good frame's own STX ends it: a good frame's
    # STX is never a hex digit, an ETX or a CR.
    good = Em4100Frame(0x31, 0x005DA05D)
    frames, _ = decode(noise + good.to_bytes() + good.to_bytes("id12"))
    assert frames[-2:] == [good, good]
