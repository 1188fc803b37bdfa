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
from typing import Protocol

import numpy as np

from drivers.buffer import DecoderStats
from drivers.em4100 import Em4100Decoder
from drivers.errors import DriverError, FrameError
from drivers.modbus_scale import RtuDecoder
from drivers.pn532 import InformationFrame as Pn532Info
from drivers.pn532 import Pn532CommandDecoder, Pn532Decoder, Pn532Poller
from drivers.pn532 import State as Pn532State
from drivers.relay import ChannelStatus
from drivers.relay import CommandDecoder as RelayCommandDecoder
from drivers.relay import StatusDecoder as RelayStatusDecoder
from drivers.sentinel import NEED_DATA
from drivers.serial_display import (
    Ack,
    Clear,
    Command,
    ErrorCode,
    Nak,
    Ping,
    Reply,
    SetBrightness,
    ShowText,
)
from drivers.serial_display import CommandDecoder as DisplayCommandDecoder
from drivers.serial_display import ReplyDecoder as DisplayReplyDecoder
from drivers.serial_display import encode as encode_display
from drivers.serial_display import encode_reply as encode_display_reply
from drivers.thingmagic.batch import Scan, Scanner, scan_twin
from drivers.thingmagic.decoder import RequestDecoder, ResponseDecoder
from drivers.thingmagic.frames import MAX_DATA_LEN, RESPONSE_OVERHEAD
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


def _same_scan(a: Scan, b: Scan) -> bool:
    return a.consumed == b.consumed and all(
        np.array_equal(getattr(a, f), getattr(b, f), equal_nan=True)
        for f in a.__dataclass_fields__
        if f != "consumed"
    )


def thingmagic_batch() -> FuzzTarget:
    """The batched stream scan, its remainder carried between inputs; kernel == twin on each."""
    scanner = Scanner()
    stats = DecoderStats()
    rest = b""
    parsed = {"reads": 0, "other": 0}

    def feed(data: bytes) -> int:
        nonlocal rest
        buf = rest + data
        fast, twin = scanner.scan(buf), scan_twin(buf)
        if not _same_scan(fast, twin):
            raise AssertionError("kernel and twin disagree")
        fast.add_to(stats)
        rest = buf[fast.consumed :]
        if len(rest) >= MAX_DATA_LEN + RESPONSE_OVERHEAD:
            raise AssertionError(f"{len(rest)} bytes left over")
        parsed["reads"] += len(fast)
        parsed["other"] += len(fast.other_off)
        return int(fast.counters[0])

    return FuzzTarget(feed, _thingmagic_corpus("module->host"), stats, parsed=parsed)


class _PullDecoder(Protocol):
    @property
    def stats(self) -> DecoderStats: ...

    def receive_data(self, data: bytes) -> None: ...
    def next_frame(self) -> object: ...


def _pulling(decoder: _PullDecoder, corpus: Sequence[bytes]) -> FuzzTarget:
    """For decoders with ``next_frame() -> frame | NEED_DATA``; counts frames by type."""
    parsed: dict[str, int] = {}

    def feed(data: bytes) -> int:
        decoder.receive_data(data)
        count = 0
        while (frame := decoder.next_frame()) is not NEED_DATA:
            count += 1
            kind = type(frame).__name__
            parsed[kind] = parsed.get(kind, 0) + 1
        return count

    return FuzzTarget(feed, corpus, decoder.stats, parsed=parsed)


def _modbus_corpus(valid: bool) -> list[bytes]:
    entries = json.loads((VECTORS / "modbus_weight.json").read_text())
    hexes = [h for e in entries if e["valid"] == valid for h in e.get("hexes", [e.get("hex")])]
    return [bytes.fromhex(h.replace(",", " ")) for h in hexes]


def relay_commands() -> FuzzTarget:
    entries = json.loads((VECTORS / "lcus_relay.json").read_text())
    corpus = [bytes.fromhex(e["hex"]) for e in entries]
    return _pulling(RelayCommandDecoder(), corpus)


def relay_status() -> FuzzTarget:
    corpus = [ChannelStatus(ch, on).to_bytes() for ch in range(1, 9) for on in (False, True)]
    return _pulling(RelayStatusDecoder(), corpus)


def display_commands() -> FuzzTarget:
    commands: list[Command] = [
        Ping(),
        ShowText(0, "Hi", 10),
        ShowText(1, "Grüße"),
        Clear(),
        SetBrightness(50),
    ]
    corpus = [encode_display(c, seq).to_bytes() for seq, c in enumerate(commands)]
    return _pulling(DisplayCommandDecoder(), corpus)


def display_replies() -> FuzzTarget:
    replies: list[Reply] = [Ack(1), Nak(2, ErrorCode.BAD_LINE), Nak(200, ErrorCode.BUSY)]
    return _pulling(DisplayReplyDecoder(), [encode_display_reply(r).to_bytes() for r in replies])


def modbus_requests() -> FuzzTarget:
    return _pulling(RtuDecoder(is_server=True), _modbus_corpus(valid=True))


def modbus_responses() -> FuzzTarget:
    # No real weight-transmitter responses were found (docs/drivers/modbus-scale.md 5.3):
    # documented layouts.
    corpus = [
        bytes.fromhex("01 03 04 00 00 04 D2 78 AE"),
        bytes.fromhex("01 03 04 FF FF FB 2E 39 3B"),
        bytes.fromhex("01 83 02 C0 F1"),
        bytes.fromhex("01 10 00 08 00 01 80 0B"),
    ]
    return _pulling(RtuDecoder(is_server=False), corpus)


def _em4100_corpus() -> list[bytes]:
    corpus: list[bytes] = []
    for entry in json.loads((VECTORS / "em4100_uart.json").read_text()):
        if "raw_hex" in entry:
            corpus.append(bytes.fromhex(entry["raw_hex"]))
        for payload in entry.get("ascii_payloads", [entry.get("ascii_payload")]):
            if payload:
                corpus += [
                    b"\x02" + payload.encode() + b"\x03",
                    b"\x02" + payload.encode() + b"\r\n\x03",
                ]
    return corpus


def em4100_frames() -> FuzzTarget:
    return _pulling(Em4100Decoder(), _em4100_corpus())


def _pn532_corpus(direction: str) -> list[bytes]:
    entries = json.loads((VECTORS / "pn532_hsu.json").read_text())
    return [bytes.fromhex(e["hex"]) for e in entries if "hex" in e and e["dir"] != direction]


def _polling_pn532() -> Pn532Poller:
    """A poller through start-up with canned answers, waiting for its first poll's ACK."""
    poller = Pn532Poller()
    poller.start()
    for code, params in ((0x15, b""), (0x03, bytes.fromhex("32 01 06 07")), (0x33, b"")):
        poller.receive(Pn532Info(0xD5, code, params))
    poller.poll()
    return poller


def pn532_responses() -> FuzzTarget:
    """Host side: the decoder, and every frame through a poller that is polling."""
    decoder = Pn532Decoder()
    poller = _polling_pn532()
    parsed: dict[str, int] = {}

    def feed(data: bytes) -> int:
        nonlocal poller
        decoder.receive_data(data)
        count = 0
        for frame in decoder.frames():
            count += 1
            for event in poller.receive(frame).events:
                kind = type(event).__name__
                parsed[kind] = parsed.get(kind, 0) + 1
            if poller.state is Pn532State.IDLE:
                poller.poll()
            elif poller.state is Pn532State.OFFLINE:
                poller = _polling_pn532()
        return count

    return FuzzTarget(feed, _pn532_corpus("host->pn532"), decoder.stats, parsed=parsed)


def pn532_commands() -> FuzzTarget:
    return _pulling(Pn532CommandDecoder(), _pn532_corpus("pn532->host"))


TARGETS: dict[str, Callable[[], FuzzTarget]] = {
    "thingmagic-responses": thingmagic_responses,
    "thingmagic-requests": thingmagic_requests,
    "thingmagic-batch": thingmagic_batch,
    "relay-commands": relay_commands,
    "relay-status": relay_status,
    "serial-display-commands": display_commands,
    "serial-display-replies": display_replies,
    "modbus-rtu-requests": modbus_requests,
    "modbus-rtu-responses": modbus_responses,
    "em4100": em4100_frames,
    "pn532-responses": pn532_responses,
    "pn532-commands": pn532_commands,
}
