"""The daemon beside the hand-written bridge (``bench.bridge``), fed the same serial stream.

One ``FakeReader`` paced at ``rate`` reads/s for each, one after the other, with the same
pre-encoded records; CPU seconds of each process per 1,000 reads written, and the messages
that reached a subscriber on the broker (every read for the bridge, presence events for the
daemon). Whether the ThingsBoard IoT Gateway could be measured too is decided in ``thingsboard``.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiomqtt

from bench.e2e import ZONES, write_config
from bench.loadgen import FakeReader, population
from bench.proc import Measured

TAGS = 200


@dataclass(frozen=True, slots=True)
class Cost:
    name: str
    reads: int
    cpu_s: float
    messages: int

    @property
    def cpu_ms_per_1000(self) -> float:
        return 1e6 * self.cpu_s / max(1, self.reads)


@contextlib.asynccontextmanager
async def counting(port: int, topic: str) -> AsyncIterator[list[int]]:
    count = [0]

    async def run() -> None:
        async with aiomqtt.Client("127.0.0.1", port) as client:
            await client.subscribe(topic)
            ready.set()
            async for _ in client.messages:
                count[0] += 1

    ready = asyncio.Event()
    task = asyncio.create_task(run())
    await ready.wait()
    try:
        yield count
    finally:
        await asyncio.sleep(1.0)  # messages still in flight
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _measure(proc: Measured, reader: FakeReader, seconds: float) -> tuple[int, float]:
    async with asyncio.timeout(30):
        while not reader.streaming.is_set():
            await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)
    a, w0 = proc.sample(), reader.written
    await asyncio.sleep(seconds)
    b, w1 = proc.sample(), reader.written
    return w1 - w0, b.cpu_s - a.cpu_s


async def bridge_cost(broker_port: int, rate: float, seconds: float) -> Cost:
    with tempfile.TemporaryDirectory() as tmp:
        reader = FakeReader(Path(tmp) / "uhf", population(TAGS, list(ZONES), 2000), rate=rate)
        argv = [sys.executable, "-m", "bench.bridge", str(reader.link), str(broker_port)]
        try:
            async with counting(broker_port, "bridge/#") as count:
                with Measured(argv) as proc:
                    reads, cpu = await _measure(proc, reader, seconds)
        finally:
            reader.close()
    return Cost("hand-written bridge (pyserial + paho per read)", reads, cpu, count[0])


async def daemon_cost(broker: str, broker_port: int, rate: float, seconds: float) -> Cost:
    with tempfile.TemporaryDirectory() as tmp:
        reader = FakeReader(Path(tmp) / "uhf-0", population(TAGS, list(ZONES), 2000), rate=rate)
        try:
            config = write_config(Path(tmp), [reader.link], broker)
            topic = "silentcommerce/v1/store-042/gw-bench/#"
            async with counting(broker_port, topic) as count:
                with Measured.daemon(config) as daemon:
                    daemon.wait_ready()
                    reads, cpu = await _measure(daemon, reader, seconds)
        finally:
            reader.close()
    return Cost("silentgate run", reads, cpu, count[0])


def thingsboard() -> str:
    """Try to fetch the ThingsBoard IoT Gateway from the registry into a scratch directory."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp,
               "thingsboard-gateway"]  # fmt: skip
        try:
            done = subprocess.run(cmd, capture_output=True, timeout=120, check=False)
        except subprocess.TimeoutExpired:
            return "pip download timed out"
        wheels = [p.name for p in Path(tmp).iterdir()]
    if done.returncode:
        return f"does not download: {done.stderr.decode(errors='replace').strip()[-120:]}"
    return f"downloads ({', '.join(wheels)})"
