"""Drain rate of the uplink: how fast a backlog of events leaves the outbox after an outage.

Run: ``.venv/bin/python -m bench.drain [--events 10000] [--runs 1]``

A private mosquitto, an outbox holding ``--events`` events, and the real ``Uplink`` started
against it; the clock runs from the uplink's start to an empty outbox (connect, publish, PUBACK,
delete, all included). Several uplink settings run side by side with two baselines on the same
broker: paho-mqtt with its own network thread, and bare aiomqtt publishing with the same window,
both publishing the same payloads QoS 1 without any outbox. The target is 10,000 events/s; the
table gives each setting's rate and its ratio to the target. Rates on a shared machine vary by
tens of percent from run to run: compare the columns of one run, not runs.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from demo.broker import BrokerProcess
from gateway.config import Config, parse_config
from gateway.events.ids import new_event_id
from gateway.events.model import DeviceStatus
from gateway.outbox import Outbox
from gateway.uplink.session import Uplink
from gateway.uplink.status import StatusBoard

TARGET_EVENTS_S: Final = 10_000
SETTINGS: Final = [  # (mqtt.batch, mqtt.inflight)
    (0, 64),
    (0, 256),
    (0, 1000),
    (50, 16),
    (100, 32),
    (500, 8),
]


@dataclass(frozen=True)
class Result:
    name: str
    events: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds


def make_config(url: str, db: Path, batch: int, inflight: int) -> Config:
    return parse_config(
        f"""
[site]
store = "store-042"
gateway = "gw-bench"
[mqtt]
url = "{url}"
batch = {batch}
inflight = {inflight}
[storage]
path = "{db}"
[privacy]
customer_ids = "omit"
[[readers]]
id = "door"
driver = "em4100"
port = "/dev/null"
zone = "entrance"
"""
    )


def sample_events(n: int) -> list[DeviceStatus]:
    return [
        DeviceStatus(
            id=str(new_event_id()),
            ts="2026-11-22T10:00:00.000Z",
            store="store-042",
            gateway="gw-bench",
            device="door",
            state="ok",
            detail=f"bench event {i}",
        )
        for i in range(n)
    ]


async def uplink_drain(url: str, tmp: Path, n: int, batch: int, inflight: int) -> Result:
    db = tmp / f"outbox-{batch}-{inflight}-{time.monotonic_ns()}.db"
    config = make_config(url, db, batch, inflight)
    outbox = Outbox.open(db)
    outbox.append(sample_events(n))
    uplink = Uplink(config, outbox, StatusBoard(outbox.backlog))
    started = time.perf_counter()
    task = asyncio.create_task(uplink.run())
    # Poll the cheap counter: backlog() counts rows, and polling it would compete with the
    # uplink for the event loop; then wait for the last deletions.
    while uplink.published < n:
        await asyncio.sleep(0.005)
    while outbox.backlog().count:
        await asyncio.sleep(0.001)
    elapsed = time.perf_counter() - started
    uplink.stop()
    await task
    outbox.close()
    return Result(f"uplink batch={batch} inflight={inflight}", n, elapsed)


async def aiomqtt_baseline(port: int, payloads: list[bytes], window: int) -> Result:
    async with aiomqtt.Client("127.0.0.1", port, max_inflight_messages=window) as client:
        client.pending_calls_threshold = 10 * window
        gate = asyncio.Semaphore(window)

        async def one(payload: bytes) -> None:
            try:
                await client.publish("bench/aiomqtt", payload, qos=1)
            finally:
                gate.release()

        started = time.perf_counter()
        async with asyncio.TaskGroup() as tg:
            for payload in payloads:
                await gate.acquire()
                tg.create_task(one(payload))
        return Result(
            f"aiomqtt bare, window {window}", len(payloads), time.perf_counter() - started
        )


def paho_baseline(port: int, payloads: list[bytes], window: int) -> Result:
    client = paho.Client(CallbackAPIVersion.VERSION2)
    client.max_inflight_messages_set(window)
    client.max_queued_messages_set(0)
    done = threading.Event()
    acked = 0

    def on_publish(*_: object) -> None:
        nonlocal acked
        acked += 1
        if acked == len(payloads):
            done.set()

    client.on_publish = on_publish
    client.connect("127.0.0.1", port)
    client.loop_start()
    started = time.perf_counter()
    for payload in payloads:
        client.publish("bench/paho", payload, qos=1)
    done.wait(120)
    elapsed = time.perf_counter() - started
    client.disconnect()
    client.loop_stop()
    return Result(f"paho thread, window {window}", len(payloads), elapsed)


async def run(n: int) -> list[Result]:
    payloads = [e.to_json().encode() for e in sample_events(n)]
    results = []
    with BrokerProcess("mosquitto") as broker, tempfile.TemporaryDirectory() as tmp:
        results.append(await asyncio.to_thread(paho_baseline, broker.port, payloads, 256))
        results.append(await aiomqtt_baseline(broker.port, payloads, 256))
        for batch, inflight in SETTINGS:
            results.append(await uplink_drain(broker.url, Path(tmp), n, batch, inflight))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    for run_no in range(args.runs):
        print(f"run {run_no + 1}: {args.events} events QoS 1, mosquitto on 127.0.0.1")
        print(f"{'setting':<34} {'seconds':>8} {'events/s':>9} {'vs 10k/s':>9}")
        for r in asyncio.run(run(args.events)):
            ratio = r.rate / TARGET_EVENTS_S
            print(f"{r.name:<34} {r.seconds:8.2f} {r.rate:9.0f} {ratio:9.2f}")


if __name__ == "__main__":
    main()
