"""The steady state's cost model: CPU per wakeup, per port read, per pipeline run, per read and
per event, each measured here on the daemon's own code, and the store-load CPU they predict.

    python -m bench.cost_model                      # the unit costs
    python -m bench.cost_model --rates W,P,R,N,E    # and the CPU that these rates per second
                                                    # (wakeups, port reads, runs, reads, events)
                                                    # predict
    valgrind --tool=callgrind --dump-before=getppid python -m bench.cost_model --replay 400

Units, on a real event loop, real ptys, a real SQLite outbox (``synchronous=FULL``), the shop
population of ``bench.loadgen.shop`` present in the presence stage:

* **wakeup**: the loop asleep on a timer for a tick and woken by it, with nothing to do (epoll,
  the loop's turn, the sleeping task's step): what a tick costs before any work.
* **port read**: one streaming port read at a tick (the ``os.read`` calls and the ThingMagic
  consumer: the scan kernel and ``emit_reads``) with 10 records waiting, less the reads' share.
* **pipeline run**: ``Pipeline._process`` when nothing happens (an empty batch).
* **read**: the slope, in reads per tick, of a tick's port reads and run together.
* **event**: the slope of a run's cost in the transitions it makes: events built and stored (one
  transaction per run).

Each wakeup and tick is measured after a pause of a tick (``COLD_S``), as the daemon runs them:
on caches that the rest of the machine has had meanwhile, which doubles a tick's cost against
a hot loop on this machine. CPU is the thread's (``time.thread_time``: user and system time of
the event loop's thread) except for events, whose commit runs on the outbox's writer thread
(``time.process_time``).
Each figure is the median of ``TRIALS`` trials: other processes on a shared machine make single
trials noisy, a median much less so.

``--replay N`` runs N ticks of four streaming ports and the pipeline, a fixed input, and calls
``os.getppid()`` before and after: under callgrind with ``--dump-before=getppid`` the middle dump
counts the instructions of exactly those ticks, which compares two versions of the code without
timing noise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from bench.loadgen import record, shop, tag_epc
from gateway.clock import SystemClock
from gateway.config import ThingMagicReader
from gateway.devices.base import DeviceContext
from gateway.devices.thingmagic import ThingMagicSession, _Stream, warm_up
from gateway.devices.tick import StreamPort
from gateway.events.factory import EventFactory
from gateway.events.privacy import Pseudonymizer
from gateway.outbox import Outbox
from gateway.pipeline import Pipeline
from gateway.reads.batch import Subjects
from gateway.stages.fusion import FusionStage
from gateway.stages.presence import PresenceStage, ZoneParams

READERS: Final = 4
ZONES: Final = ("entrance", "shelf-a", "shelf-b", "checkout")
TRIALS: Final = 7
# Units are measured as the daemon pays them: once per tick, after a tick's pause in which the
# rest of the machine had the caches (back to back, in a hot loop, a tick costs about half).
COLD_S: Final = 0.05
COLD_REPS: Final = 20
RECORD: Final = len(record(tag_epc(0), 1))


@dataclass(frozen=True, slots=True)
class Units:
    wakeup_us: float
    port_read_us: float
    run_us: float
    read_us: float
    event_us: float

    def predict_pct(
        self, wakeups: float, port_reads: float, runs: float, reads: float, events: float
    ) -> float:
        """% of a core that these rates (per second) cost."""
        us = (
            wakeups * self.wakeup_us + port_reads * self.port_read_us + runs * self.run_us
            + reads * self.read_us + events * self.event_us
        )  # fmt: skip
        return us / 1e4


class Rig:
    """The daemon's read path and pipeline in this process: READERS ptys streaming to the
    pipeline's tick, the stages and a real outbox; ``tick`` runs one tick by hand."""

    def __init__(self, tmp: Path) -> None:
        self.clock = SystemClock()
        self.subjects = Subjects()
        self.outbox = Outbox.open(tmp / "outbox.db")
        factory = EventFactory(
            store="s", gateway="g", zones=ZONES, devices=[f"uhf-{i}" for i in range(READERS)],
            subjects=self.subjects, pseudonymizer=Pseudonymizer("raw", None), clock=self.clock,
        )  # fmt: skip
        stage = PresenceStage([ZoneParams(z) for z in ZONES], subjects=self.subjects)
        self.pipeline = Pipeline(
            stage=stage, factory=factory, outbox=self.outbox, clock=self.clock,
            on_stored=lambda: None, fusion=FusionStage({1: 5.0, 2: 5.0}, self.subjects),
        )  # fmt: skip
        self.streams = [shop(i, 200.0) for i in range(READERS)]
        self._at = [0] * READERS
        self._ptys = [os.openpty() for _ in range(READERS)]
        self.ports: list[StreamPort] = []
        self._attached: list[contextlib.AbstractContextManager[StreamPort]] = []

    def attach(self) -> None:
        """Attach every pty to the pipeline's tick, ticking (as under a steady stream)."""
        for i, (_, slave) in enumerate(self._ptys):
            tty.setraw(slave)
            os.set_blocking(slave, False)
            ctx = DeviceContext(
                name=f"uhf-{i}", index=i, zones={1: 0, 2: 1, 3: 2, 4: 3},
                customer_prefixes=("C0FFEE",), subjects=self.subjects,
                collector=self.pipeline.collector, clock=self.clock, wake=self.pipeline.wake,
                on_state=lambda *_: None, tick=self.pipeline.tick,
            )  # fmt: skip
            session = ThingMagicSession(_config(i))
            attached = self.pipeline.tick.attach(slave, f"uhf-{i}", _Stream(session, ctx).consume)
            self._attached.append(attached)  # the port is detached when this is collected
            port = attached.__enter__()
            port.unpark()
            self.ports.append(port)

    def write(self, records: int) -> None:
        """``records`` of each reader's stream into its pty, as if they arrived since the last
        tick."""
        size = records * RECORD
        for i, (master, _) in enumerate(self._ptys):
            stream, at = self.streams[i], self._at[i]
            chunk = stream[at : at + size]
            if len(chunk) < size:  # the stream's end: on from its start
                chunk += stream[: size - len(chunk)]
            self._at[i] = (at + size) % len(stream)
            os.write(master, chunk)

    def settle(self) -> None:
        """Let the tty layer hand the written bytes over; keep every port ticking (one that
        found nothing at a tick has parked: the loop that would read it is not running)."""
        time.sleep(0.0005)
        for port in self.ports:
            if not port.ticking:
                port.unpark()

    def tick(self) -> int:
        """One tick as ``Pipeline.run`` does it, without the sleep; returns the events."""
        self.settle()
        self.pipeline.tick.poll()
        events = self.pipeline._process(self.clock.now())  # the run's body
        if events:
            self.outbox.append(events)
        return len(events)

    def warm(self, seconds: float = 30.0) -> None:
        """``seconds`` of the store at 200 reads/s per reader, 50 ms ticks (without the
        waiting): the population enters and settles."""
        for _ in range(int(seconds / 0.05)):
            self.write(10)
            self.tick()


def _config(i: int) -> ThingMagicReader:
    return ThingMagicReader(
        id=f"uhf-{i}", driver="thingmagic", port="/dev/null",
        antennas=dict(zip(range(1, 5), ZONES, strict=True)),
    )  # fmt: skip


def median_us(trial: Callable[[], float]) -> float:
    return statistics.median(trial() for _ in range(TRIALS))


async def wakeup_us() -> float:
    """CPU of a timer wakeup: the loop sleeps a tick (COLD_S) and wakes, COLD_REPS times."""
    loop = asyncio.get_running_loop()

    async def trial() -> float:
        started = time.thread_time()
        for _ in range(COLD_REPS):
            done = loop.create_future()
            loop.call_at(loop.time() + COLD_S, done.set_result, None)
            await done
        return 1e6 * (time.thread_time() - started) / COLD_REPS

    return statistics.median([await trial() for _ in range(TRIALS)])


def tick_us(rig: Rig, records: int) -> tuple[float, float]:
    """CPU of a tick's port reads and of its run, with ``records`` per port waiting."""

    def trial() -> tuple[float, float]:
        reading = running = 0.0
        for _ in range(COLD_REPS):
            rig.write(records)
            rig.settle()
            a = time.thread_time()
            rig.pipeline.tick.poll()
            b = time.thread_time()
            events = rig.pipeline._process(rig.clock.now())
            c = time.thread_time()
            if events:
                rig.outbox.append(events)
            reading += b - a
            running += c - b
            time.sleep(COLD_S)
        return 1e6 * reading / COLD_REPS, 1e6 * running / COLD_REPS

    trials = [trial() for _ in range(TRIALS)]
    return statistics.median(t[0] for t in trials), statistics.median(t[1] for t in trials)


def event_us(rig: Rig) -> float:
    """CPU per event: runs of 20 new customers entering, less an empty run's."""
    n = 20
    antennas = np.ones(n, np.int16)
    rssi = np.full(n, -50.0, np.float32)
    ctx = DeviceContext(
        name="door", index=0, zones={1: 0}, customer_prefixes=("C0FFEE",),
        subjects=rig.subjects, collector=rig.pipeline.collector, clock=rig.clock,
        wake=lambda: None, on_state=lambda *_: None, tick=rig.pipeline.tick,
    )  # fmt: skip
    serial = [0]
    lengths = np.full(n, 12, np.int32)
    offsets = np.arange(n, dtype=np.int64) * 12

    def run(events: bool) -> float:
        if events:  # each customer read twice, further apart than dedup_s: enough to enter
            serial[0] += 1
            buf = b"".join(bytes.fromhex("C0FFEE") + (serial[0] * n + k).to_bytes(9, "big")
                           for k in range(n))  # fmt: skip
            ctx.emit_reads(buf, offsets, lengths, antennas, rssi)
            time.sleep(0.03)
            ctx.emit_reads(buf, offsets, lengths, antennas, rssi)
        started = time.process_time()
        made = rig.pipeline._process(rig.clock.now())
        if made:
            rig.outbox.append(made)
        return time.process_time() - started

    def trial() -> float:
        with_events = sum(run(True) for _ in range(10))
        without = sum(run(False) for _ in range(10))
        return 1e6 * (with_events - without) / (10 * n)

    return median_us(trial)


async def measure(tmp: Path) -> Units:
    warm_up()
    rig = Rig(tmp)
    rig.attach()
    rig.warm()
    wake = await wakeup_us()
    per_records = {r: tick_us(rig, r) for r in (0, 10, 40, 80)}
    total = {r: sum(v) for r, v in per_records.items()}
    slope = float(np.polyfit([READERS * r for r in (10, 40, 80)],
                             [total[r] for r in (10, 40, 80)], 1)[0])  # fmt: skip
    run = per_records[0][1]
    port = (per_records[10][0] - READERS * 10 * slope) / READERS
    return Units(wake, port, run, slope, event_us(rig))


async def replay(tmp: Path, ticks: int) -> None:
    warm_up()
    rig = Rig(tmp)
    rig.attach()
    rig.warm(5.0)
    os.getppid()  # callgrind dumps here (--dump-before=getppid): the set-up ends
    for _ in range(ticks):
        rig.write(10)
        rig.tick()
    os.getppid()  # and here: the dump between the two is the replay


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rates", help="wakeups,port_reads,runs,reads,events per second")
    ap.add_argument("--replay", type=int, help="ticks of a fixed replay, for callgrind")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        if args.replay:
            asyncio.run(replay(Path(tmp), args.replay))
            return
        units = asyncio.run(measure(Path(tmp)))
    print(f"wakeup {units.wakeup_us:.1f} us, port read {units.port_read_us:.1f} us, "
          f"pipeline run {units.run_us:.1f} us, read {units.read_us:.2f} us, "
          f"event {units.event_us:.0f} us")  # fmt: skip
    if args.rates:
        rates = [float(x) for x in args.rates.split(",")]
        print(f"predicted: {units.predict_pct(*rates):.2f}% of a core")


if __name__ == "__main__":
    sys.exit(main())
