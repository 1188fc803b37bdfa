"""End to end: raw serial bytes on ptys -> ``silentgate run`` -> events from mosquitto.

Maximum rate: several ``FakeReader``s write unpaced, so each pty's write blocks whenever the
daemon has not read the previous bytes; the rate reached over the window is the rate at which
the daemon consumes reads (decoded, through the presence stage), on its one event loop.

Latency: the same readers paced at a fraction of that rate, plus a marker customer every
``MARK_EVERY_S`` on reader 0: two reads 50 ms apart (the engine needs ``enter_reads`` = 2 reads
more than ``dedup_s`` apart to enter). The stamp is the moment the second read was written to
the pty; the end is the moment the marker's ``presence.enter`` reaches a subscriber.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from bench.loadgen import FakeReader, population, record
from bench.proc import Measured, cpu_percent

ZONES: Final = {1: "entrance", 2: "shelf-a", 3: "shelf-b", 4: "checkout"}
TAGS: Final = 1000
STREAM_READS: Final = 20_000  # pre-encoded per reader, cycled
MARK_EVERY_S: Final = 0.1
MARK_GAP_S: Final = 0.05
TOPIC: Final = "silentcommerce/v1/store-042/gw-bench/event/#"


def write_config(tmp: Path, ports: list[Path], broker: str, extra: str = "") -> Path:
    antennas = ", ".join(f'{a} = "{z}"' for a, z in ZONES.items())
    readers = "".join(
        f'[[readers]]\nid = "uhf-{i}"\ndriver = "thingmagic"\nport = "{p}"\n'
        f"antennas = {{ {antennas} }}\n"
        for i, p in enumerate(ports)
    )
    path = tmp / "bench.toml"
    path.write_text(
        f'[site]\nstore = "store-042"\ngateway = "gw-bench"\n[mqtt]\nurl = "{broker}"\n'
        f'[storage]\npath = "{tmp / "outbox.db"}"\n[privacy]\ncustomer_ids = "raw"\n'
        f'[tags]\ncustomer_prefixes = ["C0FFEE"]\n{readers}{extra}'
    )
    return path


@contextlib.contextmanager
def fake_readers(tmp: Path, n: int, rate: float | None) -> Any:
    stream = population(TAGS, list(ZONES), STREAM_READS)
    readers = [FakeReader(tmp / f"uhf-{i}", stream, rate=rate) for i in range(n)]
    try:
        yield readers
    finally:
        for r in readers:
            r.close()


@dataclass(frozen=True, slots=True)
class MaxRate:
    reads_s: float
    cpu_pct: float
    rss_mb: float


async def _streaming(readers: list[FakeReader], timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not all(r.streaming.is_set() for r in readers):
            await asyncio.sleep(0.05)


async def max_rate(broker: str, tmp: Path, n_readers: int, seconds: float) -> MaxRate:
    with fake_readers(tmp, n_readers, None) as readers:
        config = write_config(tmp, [r.link for r in readers], broker)
        with Measured.daemon(config) as daemon:
            daemon.wait_ready()
            await _streaming(readers)
            await asyncio.sleep(2.0)  # the population's enters, the outbox's first commits
            a, w0 = daemon.sample(), sum(r.written for r in readers)
            await asyncio.sleep(seconds)
            b, w1 = daemon.sample(), sum(r.written for r in readers)
    return MaxRate((w1 - w0) / (b.t - a.t), cpu_percent(a, b), b.rss_mb)


@dataclass(frozen=True, slots=True)
class Latency:
    rate: float  # reads/s written, all readers
    p50_ms: float
    p99_ms: float
    samples: int
    missed: int  # markers whose enter never arrived
    cpu_pct: float
    values_ms: tuple[float, ...] = ()


def percentile(values: list[float], q: float) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


@contextlib.asynccontextmanager
async def listener(broker: str, arrivals: dict[str, float]) -> AsyncIterator[None]:
    """Fills ``arrivals`` (subject id -> monotonic receive time) from ``bench.listen``."""
    argv = [sys.executable, "-m", "bench.listen", broker, TOPIC]
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    async with asyncio.timeout(30):
        while (await proc.stdout.readline()).strip() != b"READY":
            pass
    try:
        yield
    finally:
        await asyncio.sleep(0.5)
        proc.terminate()
        out, _ = await proc.communicate()
        for line in out.decode().splitlines():
            subject, t = line.rsplit(" ", 1)
            arrivals.setdefault(subject, float(t))


async def markers(reader: FakeReader, seconds: float) -> list[str]:
    """A marker customer every MARK_EVERY_S: two reads MARK_GAP_S apart; returns their EPCs."""
    ids = []
    stop = time.monotonic() + seconds
    n = 0
    while time.monotonic() < stop:
        # C0FFEE FF: a customer apart from the shop's walkers (loadgen.customer_epc: C0FFEE and
        # the reader's index), whose enters would otherwise pass for a marker's.
        epc = bytes.fromhex("C0FFEEFF") + n.to_bytes(8, "big")
        frame = record(epc, 1, rssi=-45)
        reader.mark(frame)
        await asyncio.sleep(MARK_GAP_S)
        reader.mark(frame)
        ids.append(epc.hex().upper())
        n += 1
        await asyncio.sleep(MARK_EVERY_S - MARK_GAP_S)
    return ids


def mark_times(reader: FakeReader) -> dict[bytes, float]:
    last: dict[bytes, float] = {}
    for frame, t in reader.marks:
        last[frame] = t  # the second read of each marker is written last
    return last


async def latency(broker: str, tmp: Path, n_readers: int, rate: float, seconds: float) -> Latency:
    arrivals: dict[str, float] = {}
    with fake_readers(tmp, n_readers, rate / n_readers) as readers:
        config = write_config(tmp, [r.link for r in readers], broker)
        async with listener(broker, arrivals):
            ids, cpu, written = await marked_window(config, readers, seconds)
    stamps = mark_times(readers[0])
    sent = {record(bytes.fromhex(i), 1, rssi=-45): i for i in ids}
    lat = [1000 * (arrivals[i] - stamps[f]) for f, i in sent.items() if i in arrivals]
    return Latency(
        written, percentile(lat, 50), percentile(lat, 99), len(lat), len(ids) - len(lat), cpu,
        tuple(sorted(lat)),
    )  # fmt: skip


async def marked_window(
    config: Path, readers: list[FakeReader], seconds: float
) -> tuple[list[str], float, float]:
    """Start the daemon, let every reader stream, then send markers on reader 0 for
    ``seconds``: returns their EPCs, the daemon's CPU % and the reads/s written meanwhile."""
    with Measured.daemon(config) as daemon:
        daemon.wait_ready()
        await _streaming(readers)
        await asyncio.sleep(2.0)  # the population's enters, the outbox's first commits
        a, w0 = daemon.sample(), sum(r.written for r in readers)
        ids = await markers(readers[0], seconds)
        b, w1 = daemon.sample(), sum(r.written for r in readers)
        await asyncio.sleep(1.5)  # late events still count, as latency
    return ids, cpu_percent(a, b), (w1 - w0) / (b.t - a.t)
