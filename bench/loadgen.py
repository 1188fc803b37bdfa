"""Serial load for the benchmarks: ThingMagic modules on ptys that stream as fast as asked.

The real-time simulator (``firmware_sim.thingmagic``) models search cycles and tops out near a
real module's 170 reads/s; a benchmark needs tens of thousands. ``FakeReader`` answers bring-up
with the simulator's own command table (``ModuleState.answer``), acks start and stop, and then
writes a pre-encoded buffer of 0x22 tag records (the drivers' encoder, the metadata the daemon
asks for) in whole frames, at a paced rate or, with ``rate=None``, as fast as the reader side
takes them: a pty's write blocks when its buffer is full, so the rate reached is the rate at
which the daemon reads. Threads, not the event loop: ``os.write`` drops the GIL while it blocks.

Marker reads (``mark``) are written at a chosen moment and their write time recorded, so that a
benchmark can time read -> event at the broker.
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
import tty
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from drivers.thingmagic import commands as cmd
from drivers.thingmagic.decoder import RequestDecoder
from drivers.thingmagic.frames import Request
from drivers.thingmagic.records import (
    ReadingStarted,
    ReadingStopped,
    TagRead,
    encode_keepalive,
    encode_stream_record,
)
from firmware_sim.thingmagic_module import ModuleState

TICK_S: Final = 0.005
BURST_READS: Final = 2000  # frames per write when unpaced
KEEPALIVE_S: Final = 0.5


def record(epc: bytes, antenna: int, rssi: int = -55) -> bytes:
    read = TagRead.for_epc(epc, rssi_dbm=rssi, tx_port=antenna, rx_port=antenna)
    return encode_stream_record(read, metadata_flags=cmd.DEFAULT_METADATA_FLAGS).to_bytes()


def tag_epc(n: int) -> bytes:
    return bytes.fromhex("3034257BF7194E40") + n.to_bytes(4, "big")


def population(tags: int, antennas: Sequence[int], reads: int) -> bytes:
    """``reads`` records cycling over ``tags`` item EPCs, each tag on one antenna."""
    frames = [record(tag_epc(t), antennas[t % len(antennas)]) for t in range(tags)]
    return b"".join(frames[i % tags] for i in range(reads))


def customer_epc(reader: int, n: int) -> bytes:
    return bytes.fromhex("C0FFEE") + bytes([reader]) + n.to_bytes(8, "big")


# A customer's walk past one reader's antennas, repeated every WALK_S: (antenna, seconds).
WALK: Final = ((1, 5.0), (2, 10.0), (3, 10.0), (4, 5.0))
WALK_S: Final = 60.0


def shop(reader: int, rate: float, *, items: int = 30, customers: int = 3, seed: int = 0) -> bytes:
    """``WALK_S`` seconds of one reader in a shop, as records at ``rate`` reads/s (cycled by
    ``FakeReader``, a minute is one round of every walk): ``items`` tags that stay on the
    shelves (antennas 2-4), and ``customers`` walking entrance -> shelf-a -> shelf-b ->
    checkout and out, ``WALK_S / customers`` apart. A customer in view is read twice as often
    as an item. Each reader has its own tags."""
    rng = random.Random(seed * 100 + reader)
    shelf = [record(tag_epc(1000 * reader + i), 2 + i % 3) for i in range(items)]
    walkers = [
        {a: record(customer_epc(reader, c), a, rssi=-50) for a, _ in WALK} for c in range(customers)
    ]
    out = bytearray()
    for k in range(int(rate * WALK_S)):
        t = k / rate
        visible = list(shelf)
        for c, frames in enumerate(walkers):
            antenna = _walking((t - c * WALK_S / customers) % WALK_S)
            if antenna:
                visible += [frames[antenna]] * 2
        out += rng.choice(visible)
    return bytes(out)


def _walking(t: float) -> int:
    """The antenna that sees a customer ``t`` seconds into their walk; 0 when out of view."""
    for antenna, seconds in WALK:
        if t < seconds:
            return antenna
        t -= seconds
    return 0


class FakeReader:
    def __init__(self, link: Path, stream: bytes, *, rate: float | None = None) -> None:
        self.link = link
        self.rate = rate  # reads/s; None: as fast as the port takes them
        self.frame_len = len(record(tag_epc(0), 1))
        self.stream = stream
        self.written = 0  # tag records written, markers included
        self.streaming = threading.Event()
        self.marks: list[tuple[bytes, float]] = []  # (frame, write time) in write order
        self._pending: list[bytes] = []
        self._lock = threading.Lock()
        self._state = ModuleState(ports=(1, 2, 3, 4))
        self._closed = False
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)
        link.unlink(missing_ok=True)
        link.symlink_to(os.ttyname(self._slave))
        self._threads = [
            threading.Thread(target=self._serve, daemon=True),
            threading.Thread(target=self._stream, daemon=True),
        ]
        for t in self._threads:
            t.start()

    def mark(self, frame: bytes) -> None:
        """Write ``frame`` with the next chunk and record when it went out."""
        with self._lock:
            self._pending.append(frame)

    def close(self) -> None:
        self._closed = True
        self.streaming.set()
        for fd in (self.master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.master, view) :]

    def _serve(self) -> None:
        decoder = RequestDecoder()
        while not self._closed:
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            decoder.receive_data(data)
            for request in decoder.frames():
                reply = self._answer(request)
                with self._lock:
                    self._write(reply)

    def _answer(self, request: Request) -> bytes:
        if request.opcode != cmd.OPCODE_MULTI_PROTOCOL_TAG_OP:
            return self._state.answer(request).to_bytes()
        if request.data[2:3] == bytes((cmd.TM_OPTION_STOP_READING,)):
            self.streaming.clear()
            return ReadingStopped().to_response().to_bytes()
        self.streaming.set()
        return ReadingStarted().to_response().to_bytes()

    def _stream(self) -> None:
        at, started, keepalive = 0, time.monotonic(), 0.0
        base = 0
        with contextlib.suppress(OSError):
            while not self._closed:
                if not self.streaming.is_set():
                    self.streaming.wait()
                    started, base = time.monotonic(), self.written
                now = time.monotonic()
                n = self._due(now, started, base)
                chunk, at = self._slice(at, n)
                if now - keepalive > KEEPALIVE_S:
                    chunk += encode_keepalive().to_bytes()
                    keepalive = now
                self._send(chunk, n)
                if self.rate is not None:
                    time.sleep(TICK_S)

    def _due(self, now: float, started: float, base: int) -> int:
        if self.rate is None:
            return BURST_READS
        return max(0, int(self.rate * (now - started)) - (self.written - base))

    def _slice(self, at: int, n: int) -> tuple[bytes, int]:
        out = bytearray()
        size = len(self.stream)
        want = n * self.frame_len
        while want:
            take = min(want, size - at)
            out += self.stream[at : at + take]
            want -= take
            at = (at + take) % size
        return bytes(out), at

    def _send(self, chunk: bytes, n: int) -> None:
        with self._lock:
            marks, self._pending = self._pending, []
            self._write(chunk + b"".join(marks))
            self.written += n + len(marks)
            if marks:
                now = time.monotonic()
                self.marks += [(m, now) for m in marks]
