"""Store load: what the daemon costs in a normal shop, and whether that cost grows.

4 UHF readers at 200 reads/s each (``FakeReader``, paced: a record every 5 ms, as a USB serial
adapter hands them over; ``loadgen.shop``: 30 shelf items and 3 walking customers per reader),
2 EM4100 card readers (the simulator, a card in the field now and then) and 4 Modbus shelf
scales (the simulator, polled by the daemon), all on ptys, for ``seconds``. The daemon's CPU (%
of one core) and RSS are sampled every ``SAMPLE_S``; growth is the least-squares slope over the
run after the first minute's warm-up (or the first third, on short runs).

``bridges_load`` runs four hand-written bridges (``bench.bridge``, one per reader) on the same
streams, the baseline of the UHF part.

    python -m bench.store [--seconds 30] [--tick-ms 50]

runs, one after the other in one run: the whole store, the UHF readers alone, the four bridges
on their streams, and the readers streaming keep-alives only; CPU % of a core of each, the
bridges' against the UHF readers' as a ratio, and the daemon's rates (wakeups, pipeline runs,
reads, events per second).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from bench.e2e import ZONES, write_config
from bench.loadgen import FakeReader, shop
from bench.proc import Measured, Sample, cpu_percent
from demo.broker import BrokerProcess, free_port
from drivers.modbus_scale import generic_channel
from firmware_sim.em4100 import Em4100Sim
from firmware_sim.modbus_scale import Channel, ModbusScaleSim
from firmware_sim.pty import SimPort
from firmware_sim.scenario import Scenario, Subject, Visit
from firmware_sim.shelf import Shelf

UHF_READERS: Final = 4
UHF_RATE: Final = 200.0
CARDS: Final = ("0D00319CD0", "0D00319CD1")
SCALES: Final = 4
SAMPLE_S: Final = 5.0


@dataclass(frozen=True, slots=True)
class Rates:
    """Per second over the measured part, what the cost model (``bench.cost_model``) prices."""

    wakeups: float  # of the event loop (the main thread's voluntary context switches)
    runs: float  # pipeline runs
    reads: float
    events: float

    def __str__(self) -> str:
        return (f"{self.wakeups:.0f} wakeups/s, {self.runs:.0f} pipeline runs/s, "
                f"{self.reads:.0f} reads/s, {self.events:.1f} events/s")  # fmt: skip


@dataclass(frozen=True, slots=True)
class StoreLoad:
    seconds: float
    cpu_pct: float  # mean over the measured part
    rss_start_mb: float
    rss_end_mb: float
    rss_slope_mb_min: float
    cpu_first_pct: float  # first and last quarter: a per-read cost that grows shows here
    cpu_last_pct: float
    reads: int
    rates: Rates | None = None  # the daemon's (from its metrics endpoint), not the bridges'


def card_scenario(seconds: float) -> Scenario:
    # A card rests on each desk reader for 5 s out of every 20 (the reader repeats it).
    visits = tuple(
        Visit(card, f"desk-{i}", t + 10.0 * i, t + 10.0 * i + 5.0)
        for i, card in enumerate(CARDS)
        for t in np.arange(0.0, seconds + 60.0, 20.0).tolist()
    )
    zones = tuple(f"desk-{i}" for i in range(len(CARDS)))
    return Scenario(zones, tuple(Subject(c, "customer") for c in CARDS), visits, seconds + 60.0)


def extra_config(links: Path) -> str:
    out = ""
    for i in range(len(CARDS)):
        out += f'[[readers]]\nid = "card-{i}"\ndriver = "em4100"\n'
        out += f'port = "{links / f"card-{i}"}"\nzone = "desk-{i}"\n'
    for i in range(SCALES):
        out += f'[[sensors]]\nid = "scale-{i}"\ndriver = "modbus-scale"\n'
        out += f'port = "{links / f"scale-{i}"}"\nzone = "{ZONES[1 + i % 4]}"\n'
    return out


@contextlib.asynccontextmanager
async def simulators(tmp: Path, seconds: float):  # type: ignore[no-untyped-def]
    scenario = card_scenario(seconds)
    ports = [SimPort(tmp, f"card-{i}") for i in range(len(CARDS))]
    ports += [SimPort(tmp, f"scale-{i}") for i in range(SCALES)]
    for p in ports:
        p.open()
    sims = [Em4100Sim(ports[i], scenario, f"desk-{i}") for i in range(len(CARDS))]
    scales = [
        ModbusScaleSim(ports[len(CARDS) + i], [Channel(generic_channel(1), Shelf(seed=i))])
        for i in range(SCALES)
    ]
    tasks = [asyncio.create_task(s.run()) for s in [*sims, *scales]]
    try:
        yield
    finally:
        for t in tasks:
            t.cancel()
        for p in ports:
            p.close()


def slope_per_min(samples: list[Sample]) -> float:
    if len(samples) < 2:
        return 0.0
    t = np.array([s.t for s in samples])
    rss = np.array([s.rss_mb for s in samples])
    return float(np.polyfit(t - t[0], rss, 1)[0] * 60.0)


def uhf_readers(tmp: Path, rate: float) -> list[FakeReader]:
    return [FakeReader(tmp / f"uhf-{i}", shop(i, rate or UHF_RATE), rate=rate)
            for i in range(UHF_READERS)]  # fmt: skip


async def store_load(
    broker: str, tmp: Path, seconds: float, uhf_rate: float = UHF_RATE, *, whole: bool = True,
    tick_ms: float | None = None,
) -> StoreLoad:  # fmt: skip
    """``uhf_rate=0``: the UHF readers up but silent (keep-alives only), the baseline that tells
    the readers' share from everything else's. ``whole=False``: the UHF readers alone.
    ``tick_ms``: ``presence.tick_ms`` (None: the daemon's default)."""
    readers = uhf_readers(tmp, uhf_rate)
    port = free_port()
    try:
        async with simulators(tmp, seconds):
            extra = extra_config(tmp) if whole else ""
            extra += f"[metrics]\nenabled = true\nport = {port}\n"
            if tick_ms is not None:
                extra += f"[presence]\ntick_ms = {tick_ms}\n"
            config = write_config(tmp, [r.link for r in readers], broker, extra)
            with Measured.daemon(config) as daemon:
                daemon.wait_ready()
                samples, counts = await _sample(daemon, seconds, port)
                reads = sum(r.written for r in readers)
    finally:
        for r in readers:
            r.close()
    return _summary(seconds, samples, reads, counts)


async def bridges_load(broker_port: int, tmp: Path, seconds: float) -> StoreLoad:
    """The UHF readers' streams into four hand-written bridges: their CPU summed."""
    readers = uhf_readers(tmp, UHF_RATE)
    procs = [
        Measured([sys.executable, "-m", "bench.bridge", str(r.link), str(broker_port)])
        for r in readers
    ]
    try:
        async with asyncio.timeout(30):
            while not all(r.streaming.is_set() for r in readers):
                await asyncio.sleep(0.05)
        samples = await _sample_all(procs, seconds)
        reads = sum(r.written for r in readers)
    finally:
        for p in procs:
            p.stop()
        for r in readers:
            r.close()
    return _summary(seconds, samples, reads)


def _summary(
    seconds: float, samples: list[Sample], reads: int, counts: list[Counts] | None = None
) -> StoreLoad:
    warm = min(60.0, seconds / 3)
    first = next(i for i, s in enumerate(samples) if s.t - samples[0].t >= warm)
    kept = samples[first:]
    quarter = max(1, len(kept) // 4)
    rates = None
    if counts:
        a, b = kept[0], kept[-1]
        (runs, n, events), (runs1, n1, events1) = counts[first], counts[-1]
        deltas = (b.wakeups - a.wakeups, runs1 - runs, n1 - n, events1 - events)
        rates = Rates(*(x / (b.t - a.t) for x in deltas))
    return StoreLoad(
        seconds, cpu_percent(kept[0], kept[-1]), kept[0].rss_mb, kept[-1].rss_mb,
        slope_per_min(kept), cpu_percent(kept[0], kept[quarter]),
        cpu_percent(kept[-1 - quarter], kept[-1]), reads, rates,
    )  # fmt: skip


async def _sample_all(procs: list[Measured], seconds: float) -> list[Sample]:
    """Samples of several processes as one: CPU and RSS summed."""

    def total() -> Sample:
        each = [p.sample() for p in procs]
        return Sample(each[0].t, sum(s.cpu_s for s in each), sum(s.rss_mb for s in each))

    samples = [total()]
    step = min(SAMPLE_S, seconds / 8)
    while samples[-1].t - samples[0].t < seconds:
        await asyncio.sleep(step)
        samples.append(total())
    return samples


Counts = tuple[float, float, float]  # pipeline runs, reads, events: the daemon's totals so far


def scrape(port: int) -> Counts:
    """The daemon's totals from its Prometheus endpoint."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    totals = {"runs": 0.0, "reads": 0.0, "events": 0.0}
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name.startswith("silentgate_pipeline_stage_seconds_count"):
            totals["runs"] += float(value)
        elif name.startswith("silentgate_reads_total"):
            totals["reads"] += float(value)
        elif name.startswith("silentgate_events_total"):
            totals["events"] += float(value)
    return totals["runs"], totals["reads"], totals["events"]


async def _sample(
    daemon: Measured, seconds: float, metrics_port: int
) -> tuple[list[Sample], list[Counts]]:
    """CPU and RSS every step; the metrics only where ``_summary`` reads them (the first
    sample after the warm-up, and the last), since rendering them costs the daemon CPU too."""
    warm = min(60.0, seconds / 3)
    samples = [daemon.sample()]
    counts: list[Counts] = [(0.0, 0.0, 0.0)]
    scraped_warm = False
    step = min(SAMPLE_S, seconds / 8)
    while samples[-1].t - samples[0].t < seconds:
        await asyncio.sleep(step)
        samples.append(daemon.sample())
        last = samples[-1].t - samples[0].t >= seconds
        if last:  # the sample came first: the scrape's cost is outside the window
            counts.append(await asyncio.to_thread(scrape, metrics_port))
        elif not scraped_warm and samples[-1].t - samples[0].t >= warm:
            scraped_warm = True
            counts.append(await asyncio.to_thread(scrape, metrics_port))
            samples[-1] = daemon.sample()  # after the scrape: outside the window too
        else:
            counts.append((0.0, 0.0, 0.0))
    return samples, counts


def _line(name: str, s: StoreLoad) -> str:
    rates = f"; {s.rates}" if s.rates else ""
    return f"{name}: {s.cpu_pct:.2f}% of a core, RSS {s.rss_end_mb:.0f} MB{rates}"


async def _all(seconds: float, tick_ms: float | None) -> None:
    with BrokerProcess("mosquitto") as broker:
        url = broker.url
        runs: dict[str, StoreLoad] = {}
        for name, load in (
            ("whole store", lambda tmp: store_load(url, tmp, seconds, tick_ms=tick_ms)),
            ("4 UHF readers alone",
             lambda tmp: store_load(url, tmp, seconds, whole=False, tick_ms=tick_ms)),
            ("4 bridges", lambda tmp: bridges_load(broker.port, tmp, seconds)),
            ("keep-alives only",
             lambda tmp: store_load(url, tmp, seconds, 0.0, whole=False, tick_ms=tick_ms)),
        ):  # fmt: skip
            with tempfile.TemporaryDirectory() as tmp:
                runs[name] = await load(Path(tmp))
            print(_line(name, runs[name]), flush=True)
        ratio = runs["4 bridges"].cpu_pct / max(runs["4 UHF readers alone"].cpu_pct, 1e-9)
        print(f"bridges / UHF readers: {ratio:.1f} x")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="the store load beside four bridges, one run")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--tick-ms", type=float, help="presence.tick_ms (default: the daemon's)")
    args = ap.parse_args(argv)
    asyncio.run(_all(args.seconds, args.tick_ms))
    return 0


if __name__ == "__main__":
    sys.exit(main())
