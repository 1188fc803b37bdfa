"""Serial bytes of the triggering read -> bytes of the display frame, measured outside the
daemon, at store load: four paced UHF readers (200 reads/s each), two EM4100 card readers and
four Modbus scales polled at 10 Hz (``bench.store``), events published to a real broker. A marker
customer enters every 100 ms on reader 0; a rule shows a text on a serial display whose pty is
served by a thread that ACKs and stamps each SHOW frame. The ok ``action.executed`` events,
received from the broker (FIFO on one output), map each SHOW to its marker.

    python -m bench.rules_latency [--seconds 30] [--sync full|normal] [--uhf-rate 200]
        [--tick-ms 50] [--no-broker]

With a broker, the markers' ``presence.enter`` at the subscriber is measured too (read's bytes ->
the event received), and ``--tick-ms`` sets ``presence.tick_ms``: the setting that trades
latency for CPU (docs/benchmarks.md).

``--no-broker`` points the daemon at a port where nothing listens (the offline case): events
then stay in the outbox, which is read at the end instead.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import threading
import time
import tty
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.e2e import mark_times, marked_window, percentile, write_config
from bench.loadgen import FakeReader, record
from bench.store import extra_config, simulators, uhf_readers
from demo.broker import BrokerProcess, free_port
from drivers.sentinel import NEED_DATA
from drivers.serial_display import Ack, CommandDecoder, Received, ShowText, encode_reply
from gateway.outbox import Outbox

RULES = """
[[outputs]]
id = "disp"
driver = "serial-display"
port = "{port}"
[[rules]]
id = "hello"
cooldown_s = 0
trigger = {{ event = "presence.enter", zones = ["entrance"], subject = "customer" }}
[[rules.actions]]
output = "disp"
do = "show"
text = "Hello {{zone}}"
min_interval_s = 0
"""


class StampingDisplay:
    def __init__(self, link: Path) -> None:
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)
        link.unlink(missing_ok=True)
        link.symlink_to(os.ttyname(self._slave))
        self.shows: list[float] = []
        self._closed = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        decoder = CommandDecoder()
        while not self._closed:
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            now = time.monotonic()
            decoder.receive_data(data)
            while (frame := decoder.next_frame()) is not NEED_DATA:
                if isinstance(frame, Received):
                    if isinstance(frame.command, ShowText):
                        self.shows.append(now)
                    os.write(self.master, encode_reply(Ack(frame.seq)).to_bytes())

    def close(self) -> None:
        self._closed = True
        for fd in (self.master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)


@contextlib.asynccontextmanager
async def event_log(broker: str, events: list[dict[str, Any]]) -> AsyncIterator[None]:
    """Every event the daemon publishes, from a subscriber in its own process (read as it
    arrives: a pipe left unread fills and stalls the subscriber)."""
    topic = "silentcommerce/v1/store-042/gw-bench/event/#"
    argv = [sys.executable, "-m", "bench.listen", broker, topic, "--json"]
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    out = proc.stdout
    async with asyncio.timeout(30):
        while (await out.readline()).strip() != b"READY":
            pass

    async def collect() -> None:
        while line := await out.readline():
            events.append(json.loads(line))

    reading = asyncio.create_task(collect())
    try:
        yield
    finally:
        await asyncio.sleep(1.0)
        proc.terminate()
        await proc.wait()
        await reading


@dataclass(frozen=True, slots=True)
class RulesLatency:
    """Serial bytes of the triggering read -> the display frame's bytes, in ms."""

    p50_ms: float
    p99_ms: float
    max_ms: float
    markers: int
    measured: int
    decision_p50_ms: float  # the rule's decision -> the display's ACK (``latency_ms``)
    decision_p99_ms: float
    cpu_pct: float
    uhf_reads_s: float
    enter_p50_ms: float = float("nan")  # read's bytes -> presence.enter at a subscriber
    enter_p99_ms: float = float("nan")


async def measure(
    broker: str | None, seconds: float, sync: str = "full", uhf_rate: float = 200.0,
    tick_ms: float | None = None,
) -> RulesLatency:  # fmt: skip
    """``broker`` None: a port where nothing listens (offline), events read from the outbox."""
    tmp = Path(tempfile.mkdtemp(prefix="rules-lat-"))
    display = StampingDisplay(tmp / "disp")
    readers = uhf_readers(tmp, uhf_rate)
    url = broker or f"mqtt://127.0.0.1:{free_port()}"
    rules = extra_config(tmp) + RULES.format(port=tmp / "disp")
    if tick_ms is not None:
        rules += f"[presence]\ntick_ms = {tick_ms}\n"
    config = write_config(tmp, [r.link for r in readers], url, rules)
    config.write_text(
        config.read_text().replace("[storage]\n", f'[storage]\nsynchronous = "{sync}"\n')
    )
    events: list[dict[str, Any]] = []
    try:
        async with simulators(tmp, seconds + 60), contextlib.AsyncExitStack() as stack:
            if broker is not None:
                await stack.enter_async_context(event_log(broker, events))
            ids, cpu, written = await marked_window(config, readers, seconds)
    finally:
        for r in readers:
            r.close()
        display.close()
    if broker is None:
        events = [json.loads(r.body) for r in Outbox.open(tmp / "outbox.db").pending(limit=10**7)]
    lat, internal = latencies(events, ids, readers[0], display)
    enters = enter_latencies(events, ids, readers[0])
    return RulesLatency(
        percentile(lat, 50), percentile(lat, 99), max(lat), len(ids), len(lat),
        percentile(internal, 50), percentile(internal, 99), cpu, written,
        percentile(enters, 50), percentile(enters, 99),
    )  # fmt: skip


def enter_latencies(
    events: list[dict[str, Any]], ids: Sequence[str], marked: FakeReader
) -> list[float]:
    """Per marker: its second read's bytes -> its presence.enter received (with a broker)."""
    stamps = mark_times(marked)
    frame_of = {i: record(bytes.fromhex(i), 1, rssi=-45) for i in ids}
    return [
        1000 * (e["_received"] - stamps[frame_of[e["subject"]["id"]]])
        for e in events
        if e["type"] == "presence.enter" and "_received" in e and e["subject"]["id"] in frame_of
    ]


def latencies(
    events: list[dict[str, Any]],
    ids: Sequence[str],
    marked: FakeReader,
    display: StampingDisplay,
) -> tuple[list[float], list[float]]:
    """Per marker: read -> display bytes, and the daemon's own decision -> ACK."""
    events.sort(key=lambda e: int(e["seq"]))
    by_id = {e["id"]: e for e in events}
    done = [e for e in events if e["type"] == "action.executed" and e["ok"]]
    assert len(done) == len(display.shows), (len(done), len(display.shows))
    stamps = mark_times(marked)
    frame_of = {i: record(bytes.fromhex(i), 1, rssi=-45) for i in ids}
    lat, internal = [], []
    for event, shown in zip(done, display.shows, strict=True):  # lengths asserted above
        subject = by_id[event["trigger"]]["subject"]["id"]
        if subject in frame_of:
            lat.append(1000 * (shown - stamps[frame_of[subject]]))
            internal.append(float(event["latency_ms"]))
    return lat, internal


async def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--sync", choices=("full", "normal"), default="full")
    ap.add_argument("--uhf-rate", type=float, default=200.0, help="reads/s per UHF reader")
    ap.add_argument("--tick-ms", type=float, help="presence.tick_ms (default: the daemon's)")
    ap.add_argument("--no-broker", action="store_true")
    args = ap.parse_args(argv)
    with contextlib.ExitStack() as stack:
        broker = None if args.no_broker else stack.enter_context(BrokerProcess()).url
        r = await measure(broker, args.seconds, args.sync, args.uhf_rate, args.tick_ms)
    print(
        f"synchronous={args.sync}, tick_ms={args.tick_ms or 'default'}, broker "
        f"{'absent' if args.no_broker else 'reachable'}: {r.uhf_reads_s:.0f} UHF reads/s + card "
        f"readers + scales, daemon cpu {r.cpu_pct:.1f}%, markers {r.markers}, "
        f"measured {r.measured}; read -> display p50 {r.p50_ms:.1f} ms, p99 {r.p99_ms:.1f} ms, "
        f"max {r.max_ms:.1f} ms; read -> presence.enter at a subscriber p50 "
        f"{r.enter_p50_ms:.1f} ms, p99 {r.enter_p99_ms:.1f} ms; decision->ACK "
        f"p50 {r.decision_p50_ms:.1f} p99 {r.decision_p99_ms:.1f} ms"
    )


if __name__ == "__main__":
    asyncio.run(main())
