"""Fuzz targets: decoder name -> factory. ``bench/fuzz.py`` runs them.

A factory returns a ``FuzzTarget``: ``feed`` pushes one input into a long-lived decoder, pulls
every frame out and parses what a consumer would parse, returning how many frames came out; it
may raise only the exceptions listed in ``allowed`` (everything else is a bug). ``corpus`` holds
real frames to mutate. Add a decoder family by adding one entry to ``TARGETS``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from drivers.buffer import DecoderStats
from drivers.errors import DriverError, FrameError
from drivers.thingmagic.decoder import RequestDecoder, ResponseDecoder
from drivers.thingmagic.records import parse_stream_message, parse_tag_buffer

VECTORS = Path(__file__).resolve().parents[1] / "tests" / "vectors"


@dataclass
class FuzzTarget:
    feed: Callable[[bytes], int]
    corpus: Sequence[bytes]
    stats: DecoderStats
    allowed: tuple[type[BaseException], ...] = ()
    parsed: dict[str, int] = field(default_factory=dict)


def _thingmagic_corpus(direction: str) -> list[bytes]:
    frames = json.loads((VECTORS / "thingmagic.json").read_text())
    return [bytes.fromhex(f["hex"]) for f in frames if f["direction"] == direction]


def thingmagic_responses() -> FuzzTarget:
    decoder = ResponseDecoder()
    parsed: dict[str, int] = {}

    def feed(data: bytes) -> int:
        decoder.receive_data(data)
        count = 0
        for frame in decoder.frames():
            count += 1
            try:
                kind = type(parse_stream_message(frame)).__name__
            except FrameError:
                kind = "FrameError"
                decoder.stats.malformed += 1
            parsed[kind] = parsed.get(kind, 0) + 1
            if frame.opcode == 0x29:  # a tag-buffer reply may also carry an error status
                with contextlib.suppress(DriverError):
                    parse_tag_buffer(frame)
        return count

    return FuzzTarget(feed, _thingmagic_corpus("module->host"), decoder.stats, parsed=parsed)


def thingmagic_requests() -> FuzzTarget:
    decoder = RequestDecoder()

    def feed(data: bytes) -> int:
        decoder.receive_data(data)
        return sum(1 for _ in decoder.frames())

    return FuzzTarget(feed, _thingmagic_corpus("host->module"), decoder.stats)


TARGETS: dict[str, Callable[[], FuzzTarget]] = {
    "thingmagic-responses": thingmagic_responses,
    "thingmagic-requests": thingmagic_requests,
}
