"""The ThingMagic decoders: chunking invariance, resync on garbage, the whole SparkFun log.

The log (tests/vectors/thingmagic_sparkfun_logs_all_frames.json, from the history of
sparkfun/SparkFun_Simultaneous_RFID_Tag_Reader_Library @ 60dabeb) holds 3,215 frames in order:
2,284 received, 931 sent.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from drivers.sentinel import NEED_DATA
from drivers.thingmagic.decoder import RequestDecoder, ResponseDecoder
from drivers.thingmagic.frames import MAX_DATA_LEN, Request, Response

VECTORS_DIR = Path(__file__).parents[1] / "vectors"
LOG: list[dict[str, Any]] = json.loads(
    (VECTORS_DIR / "thingmagic_sparkfun_logs_all_frames.json").read_text()
)
VECTORS: list[dict[str, Any]] = json.loads((VECTORS_DIR / "thingmagic.json").read_text())
RECEIVED = [bytes.fromhex(f["hex"]) for f in LOG if f["dir"] == "Received"]
SENT = [bytes.fromhex(f["hex"]) for f in LOG if f["dir"] == "Sending"]
# Enough bytes to complete any candidate frame a stray 0xFF may have opened (LEN <= 0xF8).
FLUSH = bytes(MAX_DATA_LEN + 7)

Decoder = ResponseDecoder | RequestDecoder


def decode(decoder: Decoder, chunks: Sequence[bytes]) -> list[bytes]:
    out: list[bytes] = []
    for chunk in chunks:
        decoder.receive_data(chunk)
        out.extend(frame.to_bytes() for frame in decoder.frames())
    return out


def split(data: bytes, sizes: Sequence[int]) -> list[bytes]:
    chunks, at = [], 0
    for size in sizes:
        chunks.append(data[at : at + size])
        at += size
    return [*chunks, data[at:]]


def test_log_sizes() -> None:
    assert (len(LOG), len(RECEIVED), len(SENT)) == (3215, 2284, 931)


@pytest.mark.parametrize(
    ("decoder_type", "frames"),
    [(ResponseDecoder, RECEIVED), (RequestDecoder, SENT)],
    ids=["received", "sent"],
)
@pytest.mark.parametrize("chunking", ["per-frame", "whole", "bytewise", "random"])
def test_whole_log_decodes_identically_however_it_is_chunked(
    decoder_type: type[Decoder], frames: list[bytes], chunking: str
) -> None:
    stream = b"".join(frames)
    rng = random.Random(1234)
    chunks: list[bytes] = {
        "per-frame": frames,
        "whole": [stream],
        "bytewise": [stream[i : i + 1] for i in range(len(stream))],
        "random": split(stream, [rng.randint(1, 300) for _ in range(len(stream) // 100)]),
    }[chunking]
    # The default 64 KiB bound would drop the oldest bytes of a ~100 KB stream fed at once.
    decoder = decoder_type(max_size=len(stream) + 1)
    assert decode(decoder, chunks) == frames
    assert decoder.stats.frames == len(frames)
    assert decoder.stats.discarded_bytes == decoder.stats.bad_checksum == 0
    assert decoder.buffered == 0


def test_response_decoder_keeps_only_valid_vectors_and_counts_the_bad_crc() -> None:
    received = [v for v in VECTORS if v["direction"] == "module->host"]
    good = [bytes.fromhex(v["hex"]) for v in received if v["crc_ok"]]
    decoder = ResponseDecoder()
    out = decode(decoder, [bytes.fromhex(v["hex"]) for v in received] + [FLUSH])
    assert out == good
    # data22_2 holds no other 0xFF: one bad CRC, its 18 bytes and the flush are discarded.
    assert decoder.stats.bad_checksum == 1
    assert decoder.stats.discarded_bytes == 18 + len(FLUSH)
    assert decoder.stats.frames == len(good)


def test_bad_crc_drops_one_byte_and_finds_a_frame_starting_inside() -> None:
    keepalive = bytes.fromhex("FF 00 22 04 00 84 E0")
    # A 0xFF, a LEN of 2, then the real frame: the candidate spans the keep-alive's first bytes.
    decoder = ResponseDecoder()
    assert decode(decoder, [bytes.fromhex("FF 02") + keepalive + FLUSH]) == [keepalive]
    assert decoder.stats.bad_checksum == 1


@pytest.mark.parametrize("cut", [1, 12, 29, 1000, 54_321])
def test_joining_the_stream_mid_frame_resyncs_on_the_next_real_frame(cut: int) -> None:
    # Streamed reads carry 0xFF inside (metadata flags 01 FF), so joining mid-frame meets false
    # starts before the next real one.
    starts = [sum(map(len, RECEIVED[:i])) for i in range(len(RECEIVED))]
    following = [f for f, at in zip(RECEIVED, starts, strict=True) if at >= cut]
    decoder = ResponseDecoder(max_size=1 << 20)
    assert decode(decoder, [b"".join(RECEIVED)[cut:]]) == following


def test_length_above_f8_is_a_bad_length() -> None:
    version = Request(0x03).to_bytes()
    decoder = RequestDecoder()
    assert decode(decoder, [bytes.fromhex("FF F9") + version]) == [version]
    assert decoder.stats.bad_length == 1
    assert decoder.stats.discarded_bytes == 2


def test_partial_frame_waits_for_more() -> None:
    decoder = ResponseDecoder()
    decoder.receive_data(RECEIVED[1][:-1])
    assert decoder.next_frame() is NEED_DATA
    decoder.receive_data(RECEIVED[1][-1:])
    assert decoder.next_frame() == Response.from_bytes(RECEIVED[1])


def test_buffer_is_bounded_under_endless_garbage() -> None:
    decoder = ResponseDecoder(max_size=1024)
    for _ in range(100):
        decoder.receive_data(bytes.fromhex("FF F0") * 500)
        assert decoder.next_frame() is NEED_DATA
        assert decoder.buffered <= 1024


responses = st.builds(
    Response, st.integers(0, 0xFF), st.integers(0, 0xFFFF), st.binary(max_size=40)
)


@given(st.lists(responses, max_size=8), st.data())
def test_any_chunking_gives_the_same_frames(frames: list[Response], data: st.DataObject) -> None:
    stream = b"".join(f.to_bytes() for f in frames)
    sizes = data.draw(st.lists(st.integers(1, 64), max_size=len(stream)))
    assert decode(ResponseDecoder(), split(stream, sizes)) == [f.to_bytes() for f in frames]


def garbage_without_frames(garbage: bytes) -> bool:
    return decode(ResponseDecoder(), [garbage + FLUSH]) == []


@given(st.lists(st.tuples(st.binary(max_size=30), responses), min_size=1, max_size=6))
def test_frames_embedded_in_garbage_are_all_recovered(
    pieces: list[tuple[bytes, Response]],
) -> None:
    assume(all(garbage_without_frames(garbage) for garbage, _ in pieces))
    stream = b"".join(garbage + frame.to_bytes() for garbage, frame in pieces) + FLUSH
    assert decode(ResponseDecoder(), [stream]) == [frame.to_bytes() for _, frame in pieces]


@pytest.mark.parametrize("decoder_type", [ResponseDecoder, RequestDecoder])
@given(chunks=st.lists(st.binary(max_size=300), max_size=10))
def test_arbitrary_bytes_give_valid_frames_or_nothing(
    decoder_type: type[Decoder], chunks: list[bytes]
) -> None:
    decoder = decoder_type(max_size=512)
    frames = decode(decoder, chunks)
    frame_type = Response if decoder_type is ResponseDecoder else Request
    for raw in frames:
        assert frame_type.from_bytes(raw).to_bytes() == raw
    # Every byte is accounted for: in a frame, counted as discarded, or still buffered.
    accounted = sum(map(len, frames)) + decoder.stats.discarded_bytes + decoder.buffered
    assert accounted == sum(map(len, chunks))
