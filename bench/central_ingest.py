"""Ingest rate of one ``silentgate central`` member into PostgreSQL, and its CPU per event.

Run: ``.venv/bin/python -m bench.central_ingest [--events 100000] [--runs 1]``

A private mosquitto and a throwaway PostgreSQL database (127.0.0.1:5432, user postgres, or
``SILENTGATE_TEST_POSTGRES``). The member connects once to create its session and shared
subscription, goes away, and a publisher queues ``--events`` events at the broker (as after a
consumer outage); then the member starts again and the clock runs from its start to the last
event committed. CPU is the member's process time over that span (the broker and the database
server have their own); the target is 10,000 events/s. The baseline, measured in the same run:
the same rows inserted straight into the same database by the store alone (no MQTT, no
parsing), the ceiling the member works under. Both as one event per message (mosquitto's
``max_inflight_messages`` raised to 1000, or it sends 20 before a PUBACK) and as the gateway's
batches (``mqtt.batch = 100``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
from collections import deque
from dataclasses import dataclass
from typing import Final

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from bench.throwaway_pg import throwaway_database
from central.consumer import Consumer
from central.records import classify, event_rows
from central.settings import Settings
from central.store import open_store
from demo.broker import BrokerProcess
from gateway.events.ids import new_event_id

TARGET_EVENTS_S: Final = 10_000
PREFIX: Final = "silentcommerce/v1"


@dataclass(frozen=True)
class Result:
    name: str
    events: int
    seconds: float
    cpu_s: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    @property
    def cpu_us(self) -> float:
        return 1e6 * self.cpu_s / self.events


def events(n: int, gateway: str) -> list[dict[str, object]]:
    ts = "2026-11-23T10:00:00.000Z"
    return [
        {"schema": "silentcommerce.event/v1", "id": str(new_event_id()), "seq": i + 1,
         "type": "presence.enter", "ts": ts, "store": "store-042", "gateway": gateway,
         "zone": ("entrance", "shelf-a", "shelf-b")[i % 3],
         "subject": {"kind": "customer", "id": f"{i:064x}"}, "source": {"device": "door"},
         "rssi_dbm": -52.0}
        for i in range(n)
    ]  # fmt: skip


def publish(port: int, docs: list[dict[str, object]], batch: int) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    client.max_inflight_messages_set(256)
    client.connect("127.0.0.1", port)
    client.loop_start()
    gateway = docs[0]["gateway"]
    if batch <= 1:
        topic = f"{PREFIX}/store-042/{gateway}/event/presence.enter"
        payloads = [json.dumps(doc) for doc in docs]
    else:
        topic = f"{PREFIX}/store-042/{gateway}/events"
        payloads = [json.dumps(docs[at : at + batch]) for at in range(0, len(docs), batch)]
    window: deque[paho.MQTTMessageInfo] = deque()
    for payload in payloads:
        if len(window) >= 1000:  # paho's own queue is bounded
            window.popleft().wait_for_publish(60)
        window.append(client.publish(topic, payload, qos=1))
    for info in window:
        info.wait_for_publish(60)
    client.disconnect()
    client.loop_stop()


async def member_run(broker: BrokerProcess, url: str, n: int, batch: int) -> Result:
    store = open_store(url)
    # A group per run: a member's session from an earlier run would get its share otherwise.
    group = f"bench-{batch}"
    settings = Settings(broker=broker.url, db=url, group=group, client_id=group)
    first = Consumer(settings, store)
    task = asyncio.create_task(first.run())
    await first.connected.wait()  # the session and its shared subscription exist
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    store.close()
    await asyncio.to_thread(publish, broker.port, events(n, f"gw-{batch}"), batch)
    store = open_store(url)
    member = Consumer(settings, store)
    cpu0, started = _cpu(), time.perf_counter()
    task = asyncio.create_task(member.run())
    while member.figures.stored < n:
        await asyncio.sleep(0.002)
    elapsed, cpu = time.perf_counter() - started, _cpu() - cpu0
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    store.close()
    name = "member, one event per message" if batch <= 1 else f"member, batches of {batch}"
    return Result(name, n, elapsed, cpu)


def baseline(url: str, n: int) -> Result:
    """The store alone: the same rows, already parsed, in transactions of 1,000."""
    rows = []
    for doc in events(n, "gw-baseline"):
        topic = classify(f"{PREFIX}/store-042/gw-baseline/event/presence.enter", PREFIX)
        rows += event_rows(topic, json.dumps(doc).encode())
    store = open_store(url)
    cpu0, started = _cpu(), time.perf_counter()
    for at in range(0, n, 1000):
        store.insert(rows[at : at + 1000], 0.0)
    elapsed, cpu = time.perf_counter() - started, _cpu() - cpu0
    store.close()
    return Result("store.insert alone (baseline)", n, elapsed, cpu)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run(n: int) -> list[Result]:
    extra = "max_inflight_messages 1000\n"
    with (
        BrokerProcess("mosquitto", extra_config=extra) as broker,
        throwaway_database("bench") as url,
    ):
        return [
            await asyncio.to_thread(baseline, url, n),
            await member_run(broker, url, n, 1),
            await member_run(broker, url, n, 100),
        ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    for run_no in range(args.runs):
        print(f"run {run_no + 1}: {args.events} events, mosquitto and PostgreSQL on 127.0.0.1")
        print(f"{'setting':<34} {'seconds':>8} {'events/s':>9} {'vs 10k/s':>9} "
              f"{'vs base':>8} {'CPU us/ev':>10}")  # fmt: skip
        results = asyncio.run(run(args.events))
        base = results[0].rate
        for r in results:
            print(f"{r.name:<34} {r.seconds:8.2f} {r.rate:9.0f} {r.rate / TARGET_EVENTS_S:9.2f} "
                  f"{r.rate / base:8.2f} {r.cpu_us:10.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
