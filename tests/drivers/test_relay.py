"""LCUS relay commands and status replies against the published vectors (lcus_relay.json)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import EncodeError, FrameError
from drivers.relay import STATUS_QUERY, ChannelStatus, CommandDecoder, RelayCommand, StatusDecoder
from drivers.sentinel import NEED_DATA

VECTORS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parents[1] / "vectors" / "lcus_relay.json").read_text()
)
SWITCH_VECTORS = [v for v in VECTORS if len(bytes.fromhex(v["hex"])) == 4]

commands = st.builds(RelayCommand, channel=st.integers(1, 8), on=st.booleans())
statuses = st.builds(ChannelStatus, channel=st.integers(1, 8), on=st.booleans())


def drain(decoder: CommandDecoder | StatusDecoder, *chunks: bytes) -> list[object]:
    out: list[object] = []
    for chunk in chunks:
        decoder.receive_data(chunk)
        while (frame := decoder.next_frame()) is not NEED_DATA:
            out.append(frame)
    return out


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


# --- published vectors ----------------------------------------------------------------------------


@pytest.mark.parametrize("vector", SWITCH_VECTORS, ids=lambda v: v["hex"])
def test_published_switch_commands_encode_byte_for_byte(vector: dict[str, Any]) -> None:
    wire = bytes.fromhex(vector["hex"])
    command = RelayCommand.from_bytes(wire)
    assert command.channel == int(vector["meaning"].split()[1])
    assert command.on is vector["meaning"].endswith("ON")
    assert command.to_bytes() == wire


def test_status_query_is_the_published_single_byte() -> None:
    (vector,) = [v for v in VECTORS if v["hex"] == "FF"]
    assert bytes.fromhex(vector["hex"]) == STATUS_QUERY
    assert drain(CommandDecoder(), STATUS_QUERY) == [STATUS_QUERY]


def test_reported_status_reply_decodes() -> None:
    # AscomSwitchDriver README: "CH1:OFF \r\nCH2:OFF \r\n"
    decoder = StatusDecoder()
    assert drain(decoder, b"CH1:OFF \r\nCH2:OFF \r\n") == [
        ChannelStatus(1, False),
        ChannelStatus(2, False),
    ]
    assert decoder.stats.frames == 2


# --- encoding errors ------------------------------------------------------------------------------


@pytest.mark.parametrize("channel", [0, 9, -1, 256])
def test_channel_out_of_range_is_an_encode_error(channel: int) -> None:
    with pytest.raises(EncodeError):
        RelayCommand(channel, True)


@pytest.mark.parametrize(
    "wire",
    ["A0 01 01 A3", "A1 01 01 A2", "A0 01 02 A3", "A0 09 01 AA", "A0 01 01"],
)
def test_from_bytes_rejects_broken_commands(wire: str) -> None:
    with pytest.raises(FrameError):
        RelayCommand.from_bytes(bytes.fromhex(wire))


# --- command decoder ------------------------------------------------------------------------------


def test_commands_whole_bytewise_and_with_a_trailing_partial() -> None:
    wire = b"".join(bytes.fromhex(v["hex"]) for v in SWITCH_VECTORS)
    expected = [RelayCommand.from_bytes(bytes.fromhex(v["hex"])) for v in SWITCH_VECTORS]
    assert drain(CommandDecoder(), wire) == expected
    assert drain(CommandDecoder(), *[wire[i : i + 1] for i in range(len(wire))]) == expected
    decoder = CommandDecoder()
    assert drain(decoder, wire + b"\xa0\x01") == expected
    assert decoder.next_frame() is NEED_DATA


def test_bad_checksum_is_counted_and_the_next_command_still_found() -> None:
    decoder = CommandDecoder()
    frames = drain(decoder, bytes.fromhex("A0 01 01 A3  A0 01 01 A2"))
    assert frames == [RelayCommand(1, True)]
    assert decoder.stats.bad_checksum == 1
    assert decoder.stats.discarded_bytes == 4


@given(st.lists(commands, max_size=20), st.lists(st.integers(0, 200), max_size=10))
def test_command_round_trip_in_any_chunking(cmds: list[RelayCommand], cuts: list[int]) -> None:
    wire = b"".join(c.to_bytes() for c in cmds)
    assert drain(CommandDecoder(), *split(wire, cuts)) == cmds


@given(
    st.lists(
        st.tuples(
            st.binary(max_size=6).filter(lambda g: b"\xa0" not in g and b"\xff" not in g), commands
        ),
        max_size=10,
    )
)
def test_commands_inside_garbage_are_recovered(parts: list[tuple[bytes, RelayCommand]]) -> None:
    decoder = CommandDecoder()
    wire = b"".join(g + c.to_bytes() for g, c in parts)
    assert drain(decoder, wire) == [c for _, c in parts]
    assert decoder.stats.discarded_bytes == sum(len(g) for g, _ in parts)


@given(st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=8))
def test_arbitrary_bytes_never_raise_and_decode_the_same_in_any_chunking(
    data: bytes, cuts: list[int]
) -> None:
    assert drain(CommandDecoder(), data) == drain(CommandDecoder(), *split(data, cuts))


# --- status decoder -------------------------------------------------------------------------------


@given(st.lists(statuses, max_size=16), st.lists(st.integers(0, 400), max_size=10))
def test_status_round_trip_in_any_chunking(lines: list[ChannelStatus], cuts: list[int]) -> None:
    wire = b"".join(s.to_bytes() for s in lines)
    assert drain(StatusDecoder(), *split(wire, cuts)) == lines


@given(
    st.lists(
        st.tuples(st.binary(max_size=8).filter(lambda g: b"C" not in g), statuses),
        max_size=8,
    )
)
def test_status_lines_inside_garbage_are_recovered(
    parts: list[tuple[bytes, ChannelStatus]],
) -> None:
    wire = b"".join(g + s.to_bytes() for g, s in parts)
    assert drain(StatusDecoder(), wire) == [s for _, s in parts]


def test_overlong_and_malformed_lines_are_counted() -> None:
    decoder = StatusDecoder()
    frames = drain(decoder, b"CH" + b"x" * 40 + b"\r\n", b"CH3:MAYBE \r\n", b"CH2:ON \r\n")
    assert frames == [ChannelStatus(2, True)]
    assert decoder.stats.bad_length >= 1
    assert decoder.stats.malformed >= 1


def test_status_buffer_stays_bounded_under_garbage() -> None:
    decoder = StatusDecoder(max_size=256)
    for _ in range(100):
        drain(decoder, b"CH" * 100)
    assert decoder.buffered <= 256


@given(st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=8))
def test_arbitrary_status_bytes_never_raise_and_decode_the_same_in_any_chunking(
    data: bytes, cuts: list[int]
) -> None:
    assert drain(StatusDecoder(), data) == drain(StatusDecoder(), *split(data, cuts))
