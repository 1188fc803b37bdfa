"""The serial-display protocol: CRC, frames, messages, decoders (serial-display.md)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import EncodeError, FrameError
from drivers.sentinel import NEED_DATA
from drivers.serial_display import (
    MAX_PAYLOAD,
    MAX_TEXT,
    SOF,
    Ack,
    Clear,
    CommandDecoder,
    ErrorCode,
    Frame,
    FrameDecoder,
    InvalidMessageError,
    Nak,
    Ping,
    Received,
    Refused,
    ReplyDecoder,
    SetBrightness,
    ShowText,
    crc16_ccitt_false,
    encode,
    encode_reply,
    parse_command,
    parse_reply,
)

# Section 5 of the spec. Our own protocol, so these are worked examples, not captures.
SPEC_EXAMPLES = [
    (encode(Ping(), 0), "A5 00 00 01 DC BD"),
    (encode(ShowText(0, "Hi", 10), 1), "A5 05 01 02 00 00 0A 48 69 F4 8A"),
    (encode(ShowText(1, "Grüße"), 2), "A5 0A 02 02 01 00 00 47 72 C3 BC C3 9F 65 42 00"),
    (encode(Clear(), 3), "A5 01 03 03 FF E0 87"),
    (encode(SetBrightness(50), 4), "A5 01 04 04 32 F4 61"),
    (encode_reply(Ack(1)), "A5 00 01 80 6E 25"),
    (encode_reply(Nak(2, ErrorCode.BAD_LINE)), "A5 01 02 81 04 F4 39"),
]

texts = st.text(max_size=60).filter(lambda t: len(t.encode()) <= MAX_TEXT)
commands = st.one_of(
    st.just(Ping()),
    st.builds(ShowText, line=st.integers(0, 254), text=texts, duration_s=st.integers(0, 65535)),
    st.builds(Clear, line=st.integers(0, 255)),
    st.builds(SetBrightness, percent=st.integers(0, 100)),
)
replies = st.one_of(
    st.builds(Ack, seq=st.integers(0, 255)),
    st.builds(Nak, seq=st.integers(0, 255), code=st.sampled_from(ErrorCode)),
)
frames = st.builds(
    Frame,
    seq=st.integers(0, 255),
    type=st.integers(0, 255),
    payload=st.binary(max_size=MAX_PAYLOAD),
)


def bitwise_crc(data: bytes) -> int:
    """The spec's C loop, transcribed, as an independent check of the table version."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021 if crc & 0x8000 else crc << 1) & 0xFFFF
    return crc


def drain(decoder: FrameDecoder | ReplyDecoder | CommandDecoder, *chunks: bytes) -> list[object]:
    out: list[object] = []
    for chunk in chunks:
        decoder.receive_data(chunk)
        while (frame := decoder.next_frame()) is not NEED_DATA:
            out.append(frame)
    return out


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


# --- CRC and examples -----------------------------------------------------------------------------


def test_crc_check_value_is_the_catalogue_one() -> None:
    assert crc16_ccitt_false(b"123456789") == 0x29B1


@given(st.binary(max_size=300))
def test_the_crc_equals_the_spec_bitwise_loop(data: bytes) -> None:
    assert crc16_ccitt_false(data) == bitwise_crc(data)


@given(st.binary(max_size=100), st.binary(max_size=100))
def test_the_crc_continues_from_a_running_value(head: bytes, tail: bytes) -> None:
    assert crc16_ccitt_false(tail, crc16_ccitt_false(head)) == crc16_ccitt_false(head + tail)


@pytest.mark.parametrize(("frame", "wire"), SPEC_EXAMPLES, ids=[w for _, w in SPEC_EXAMPLES])
def test_spec_examples(frame: Frame, wire: str) -> None:
    data = bytes.fromhex(wire)
    assert frame.to_bytes() == data
    assert Frame.from_bytes(data) == frame
    assert int.from_bytes(data[-2:], "big") == bitwise_crc(data[1:-2])


# --- frames ---------------------------------------------------------------------------------------


@given(frames)
def test_frame_round_trip(frame: Frame) -> None:
    wire = frame.to_bytes()
    assert wire[0] == SOF
    assert len(wire) == len(frame.payload) + 6
    assert Frame.from_bytes(wire) == frame


@pytest.mark.parametrize(
    "wire",
    [
        "A5 00 00 01 DC BC",  # CRC off by one
        "A4 00 00 01 DC BD",  # not SOF
        "A5 01 00 01 DC BD",  # LEN says one payload byte, none there
        "A5 00 00 01 DC",  # runt
        "A5 FB 00 01" + " 00" * 251 + " 00 00",  # LEN above 250
    ],
)
def test_from_bytes_rejects(wire: str) -> None:
    with pytest.raises(FrameError):
        Frame.from_bytes(bytes.fromhex(wire))


def test_frame_refuses_to_encode_oversize_payload() -> None:
    with pytest.raises(EncodeError):
        Frame(0, 1, bytes(MAX_PAYLOAD + 1))


@pytest.mark.parametrize(
    "build",
    [
        lambda: ShowText(255, "x"),
        lambda: ShowText(0, "x" * (MAX_TEXT + 1)),
        lambda: ShowText(0, "ü" * (MAX_TEXT // 2 + 1)),  # fits in characters, not in bytes
        lambda: ShowText(0, "x", 65536),
        lambda: SetBrightness(101),
        lambda: Clear(256),
    ],
)
def test_impossible_commands_are_encode_errors(build: object) -> None:
    with pytest.raises(EncodeError):
        build()  # type: ignore[operator]


# --- messages -------------------------------------------------------------------------------------


@given(commands, st.integers(0, 255))
def test_command_round_trip(command: object, seq: int) -> None:
    frame = encode(command, seq)  # type: ignore[arg-type]
    assert frame.seq == seq
    assert parse_command(Frame.from_bytes(frame.to_bytes())) == command


@given(replies)
def test_reply_round_trip(reply: Ack | Nak) -> None:
    assert parse_reply(Frame.from_bytes(encode_reply(reply).to_bytes())) == reply


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (Frame(0, 0x7F), ErrorCode.UNKNOWN_TYPE),
        (Frame(0, 0x80), ErrorCode.UNKNOWN_TYPE),  # an ACK sent to the display
        (Frame(0, 0x01, b"\x00"), ErrorCode.BAD_LENGTH),
        (Frame(0, 0x02, b"\x00\x00"), ErrorCode.BAD_LENGTH),
        (Frame(0, 0x03, b""), ErrorCode.BAD_LENGTH),
        (Frame(0, 0x02, b"\x00\x00\x00\xff\xfe"), ErrorCode.BAD_TEXT),
        (Frame(0, 0x02, b"\xff\x00\x00hi"), ErrorCode.BAD_LINE),
        (Frame(0, 0x04, b"\x65"), ErrorCode.BAD_VALUE),
    ],
)
def test_invalid_commands_carry_their_nak_code(frame: Frame, code: ErrorCode) -> None:
    with pytest.raises(InvalidMessageError) as info:
        parse_command(frame)
    assert info.value.code is code


# --- decoders -------------------------------------------------------------------------------------


def test_examples_whole_bytewise_and_with_a_trailing_partial() -> None:
    wire = b"".join(f.to_bytes() for f, _ in SPEC_EXAMPLES)
    expected = [f for f, _ in SPEC_EXAMPLES]
    assert drain(FrameDecoder(), wire) == expected
    assert drain(FrameDecoder(), *[wire[i : i + 1] for i in range(len(wire))]) == expected
    decoder = FrameDecoder()
    assert drain(decoder, wire + wire[:5]) == expected
    assert decoder.next_frame() is NEED_DATA


@given(st.lists(frames, max_size=8), st.lists(st.integers(0, 3000), max_size=12))
def test_frames_round_trip_in_any_chunking(fs: list[Frame], cuts: list[int]) -> None:
    wire = b"".join(f.to_bytes() for f in fs)
    decoder = FrameDecoder()
    assert drain(decoder, *split(wire, cuts)) == fs
    assert decoder.stats.frames == len(fs)
    assert decoder.stats.discarded_bytes == 0


@given(
    st.lists(
        st.tuples(st.binary(max_size=12).filter(lambda g: SOF not in g), frames),
        max_size=6,
    )
)
def test_frames_inside_garbage_are_recovered(parts: list[tuple[bytes, Frame]]) -> None:
    decoder = FrameDecoder()
    assert drain(decoder, b"".join(g + f.to_bytes() for g, f in parts)) == [f for _, f in parts]
    assert decoder.stats.discarded_bytes == sum(len(g) for g, _ in parts)


@given(frames, st.integers(0, 300), st.integers(0, 7))
def test_a_corrupted_frame_is_counted_and_the_next_one_survives(
    frame: Frame, position: int, bit: int
) -> None:
    broken = bytearray(frame.to_bytes())
    broken[1 + position % (len(broken) - 1)] ^= 1 << bit
    good = encode(Ping(), 7)
    decoder = FrameDecoder()
    # A corrupted LEN makes the decoder wait for that many bytes (the spec's silence timeout is
    # the caller's business), so idle-line filler follows; then the good frame must come out.
    assert good in drain(decoder, bytes(broken) + good.to_bytes() + bytes(MAX_PAYLOAD + 6))
    stats = decoder.stats
    assert stats.bad_checksum + stats.bad_length >= 1


def test_runt_waits_then_the_rest_completes_it() -> None:
    wire = encode(ShowText(0, "Hello"), 9).to_bytes()
    decoder = FrameDecoder()
    assert drain(decoder, wire[:3]) == []
    assert drain(decoder, wire[3:]) == [encode(ShowText(0, "Hello"), 9)]


def test_length_above_maximum_is_counted_as_bad_length() -> None:
    decoder = FrameDecoder()
    assert drain(decoder, bytes([SOF, 0xFF]) + encode(Ping(), 1).to_bytes()) == [encode(Ping(), 1)]
    assert decoder.stats.bad_length == 1


def test_buffer_stays_bounded_when_fed_only_start_bytes() -> None:
    decoder = FrameDecoder(max_size=512)
    for _ in range(50):
        drain(decoder, bytes([SOF, 200]) * 100)
    assert decoder.buffered <= 512


@given(st.binary(max_size=400), st.lists(st.integers(0, 400), max_size=10))
def test_arbitrary_bytes_never_raise_and_decode_the_same_in_any_chunking(
    data: bytes, cuts: list[int]
) -> None:
    for make in (FrameDecoder, ReplyDecoder, CommandDecoder):
        assert drain(make(), data) == drain(make(), *split(data, cuts))


def test_reply_decoder_counts_non_replies_as_malformed() -> None:
    decoder = ReplyDecoder()
    wire = encode(Ping(), 1).to_bytes() + Frame(2, 0x81, b"\x99").to_bytes()
    wire += encode_reply(Ack(3)).to_bytes()
    assert drain(decoder, wire) == [Ack(3)]
    assert decoder.stats.malformed == 2


def test_command_decoder_hands_refusals_to_the_display() -> None:
    decoder = CommandDecoder()
    wire = Frame(5, 0x42).to_bytes() + encode(Clear(1), 6).to_bytes()
    assert drain(decoder, wire) == [Refused(5, ErrorCode.UNKNOWN_TYPE), Received(6, Clear(1))]
    assert decoder.stats.malformed == 1


def test_giving_up_on_a_partial_frame_releases_the_frame_behind_it() -> None:
    decoder = FrameDecoder()
    good = encode(Ping(), 3)
    assert drain(decoder, bytes([SOF, 40, 1, 2]) + good.to_bytes()) == []
    decoder.give_up_partial()
    assert drain(decoder, b"") == [good]
    assert decoder.stats.bad_length == 1
