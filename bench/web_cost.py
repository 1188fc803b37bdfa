"""What the live page costs the daemon at the store load of ``bench.store``.

    .venv/bin/python -m bench.web_cost                  # 2 rounds of 60 s phases (~9 minutes)
    .venv/bin/python -m bench.web_cost --seconds 20 --rounds 1

Each round starts the store (4 UHF readers at 200 reads/s, 2 card readers, 4 scales, on ptys)
twice: a daemon with ``[web]`` off, then one with it on, measured first with nobody watching and
then with one page watching (``/api/events`` read by a client of this process, in the tuning
view of one antenna: the heaviest snapshot). Daemon CPU is measured over each phase after a
warm-up; the rounds alternate, so a machine that drifts drifts across all three, and the
figures are each phase's mean over the rounds, as ratios to the page off.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from bench.e2e import write_config
from bench.proc import Measured, cpu_percent
from bench.store import extra_config, simulators, uhf_readers
from demo.broker import BrokerProcess, free_port

WARM_UP_S: Final = 20.0
UHF_RATE: Final = 200.0
TUNED: Final = "uhf-0:1"  # the antenna the watching page tunes


@dataclass
class Watch:
    messages: int = 0
    bytes: int = 0


async def _phase(daemon: Measured, seconds: float) -> float:
    first = daemon.sample()
    await asyncio.sleep(seconds)
    return cpu_percent(first, daemon.sample())


@contextlib.asynccontextmanager
async def _store(broker: str, tmp: Path, seconds: float, web: str) -> AsyncIterator[Measured]:
    readers = uhf_readers(tmp, UHF_RATE)
    try:
        async with simulators(tmp, seconds):
            config = write_config(tmp, [r.link for r in readers], broker, extra_config(tmp) + web)
            with Measured.daemon(config) as daemon:
                daemon.wait_ready()
                await asyncio.sleep(WARM_UP_S)
                yield daemon
    finally:
        for r in readers:
            r.close()


async def _watch(port: int, watch: Watch) -> None:
    """One page: the server-sent events read as a browser reads them."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET /api/events?antenna={TUNED} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        await writer.drain()
        await reader.readuntil(b"\r\n\r\n")
        while line := await reader.readline():
            if line.startswith(b"data: "):
                watch.messages += 1
                watch.bytes += len(line)
    finally:
        writer.close()


async def measure(broker: str, seconds: float, rounds: int) -> dict[str, list[float]]:
    cpu: dict[str, list[float]] = {"off": [], "on, nobody watching": [], "on, one page": []}
    watch = Watch()
    answers: list[float] = []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as tmp:
            async with _store(broker, Path(tmp), seconds, "") as daemon:
                cpu["off"].append(await _phase(daemon, seconds))
        port = free_port()
        web = f"[web]\nenabled = true\nport = {port}\n"
        with tempfile.TemporaryDirectory() as tmp:
            async with _store(broker, Path(tmp), 2 * seconds, web) as daemon:
                cpu["on, nobody watching"].append(await _phase(daemon, seconds))
                page = asyncio.create_task(_watch(port, watch))
                await asyncio.sleep(3.0)  # connected, the ring armed and filling
                cpu["on, one page"].append(await _phase(daemon, seconds))
                page.cancel()
                answers += [await asyncio.to_thread(_get_state, port) for _ in range(20)]
    print(f"# page: {watch.messages} snapshots, {watch.bytes / max(1, watch.messages):.0f} B each")
    median, longest = statistics.median(answers) * 1000, max(answers) * 1000
    print(f"# /api/state answered in {median:.1f} ms (median of {len(answers)}, max "
          f"{longest:.1f} ms): at most the loop's time per snapshot")  # fmt: skip
    return cpu


def _get_state(port: int) -> float:
    started = time.perf_counter()
    url = f"http://127.0.0.1:{port}/api/state?antenna={TUNED}"
    with urllib.request.urlopen(url, timeout=10) as response:
        response.read()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="per phase")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args(argv)
    with BrokerProcess("mosquitto") as broker:
        cpu = asyncio.run(measure(broker.url, args.seconds, args.rounds))
    off = statistics.mean(cpu["off"])
    for name, values in cpu.items():
        each = ", ".join(f"{v:.2f}" for v in values)
        mean = statistics.mean(values)
        print(f"{name:22} {mean:6.2f}% of a core  x{mean / off:.2f}  (rounds: {each})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
