"""The uplink against a real broker: order, PUBACK-driven deletion, status and last will,
the fallback to MQTT 3.1.1 on a broker that refuses v5, TLS with client certificates and a
password file, and consumers in an MQTT v5 shared
subscription splitting the stream."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from tls import TlsMosquitto, make_pki

from demo.broker import BrokerProcess, environment_broker_kind, find_mosquitto
from gateway.config import Config, parse_config
from gateway.events.ids import new_event_id
from gateway.events.model import DeviceStatus
from gateway.outbox import Outbox
from gateway.tools.tail import subscribe
from gateway.uplink.session import Uplink
from gateway.uplink.status import StatusBoard

pytestmark = [pytest.mark.broker, pytest.mark.timeout(60)]


def make_config(url: str, tmp: Path, batch: int = 0) -> Config:
    return parse_config(
        f"""
[site]
store = "store-042"
gateway = "gw-1"
[mqtt]
url = "{url}"
batch = {batch}
inflight = 8
[storage]
path = "{tmp / "outbox.db"}"
[privacy]
customer_ids = "omit"
[[readers]]
id = "door"
driver = "em4100"
port = "/dev/null"
zone = "entrance"
"""
    )


def events(n: int) -> list[DeviceStatus]:
    return [
        DeviceStatus(
            id=str(new_event_id()),
            ts="2026-11-22T10:00:00.000Z",
            store="store-042",
            gateway="gw-1",
            device="door",
            state=f"s{i}",
        )
        for i in range(n)
    ]


async def collect(url: str, into: list[tuple[str, dict[str, Any]]], ready: asyncio.Event) -> None:
    await subscribe(url, "silentcommerce/v1/#", lambda k, o: into.append((k, o)), ready)


async def run_until(cond: Any, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.02)


@pytest.mark.parametrize("batch", [0, 50])
async def test_events_arrive_in_seq_order_and_leave_the_outbox(
    broker: BrokerProcess, tmp_path: Path, batch: int
) -> None:
    config = make_config(broker.url, tmp_path, batch)
    outbox = Outbox.open(config.storage.path)
    outbox.append(events(300))
    uplink = Uplink(config, outbox, StatusBoard(outbox.backlog))
    got: list[tuple[str, dict[str, Any]]] = []
    ready = asyncio.Event()
    async with asyncio.TaskGroup() as tg:
        sub = tg.create_task(collect(broker.url, got, ready))
        await ready.wait()
        up = tg.create_task(uplink.run())
        await run_until(lambda: sum(k == "event" for k, _ in got) >= 300)
        await run_until(lambda: outbox.backlog().count == 0)
        uplink.stop()
        await up
        sub.cancel()
    seqs = [o["seq"] for k, o in got if k == "event"]
    assert seqs == list(range(1, 301))
    # A retained status of an earlier test may come first; then ours: online ... offline.
    states = [o["state"] for k, o in got if k == "status"]
    assert "online" in states[-3:]
    assert states[-1] == "offline"


async def test_falls_back_to_mqtt_311_on_a_broker_without_v5(tmp_path: Path) -> None:
    with BrokerProcess("amqtt") as amqtt:
        config = make_config(amqtt.url, tmp_path)
        outbox = Outbox.open(config.storage.path)
        outbox.append(events(5))
        uplink = Uplink(config, outbox, StatusBoard(outbox.backlog))
        task = asyncio.create_task(uplink.run())
        await run_until(lambda: outbox.backlog().count == 0, timeout=30)
        uplink.stop()
        await task


needs_mosquitto = pytest.mark.skipif(
    find_mosquitto() is None and environment_broker_kind() != "mosquitto",
    reason="shared subscriptions need MQTT v5 (mosquitto)",
)
SHARED_FILTER = "$share/crm/silentcommerce/v1/+/+/event/#"


async def shared_consumer(port: int, into: list[int], ready: asyncio.Event) -> None:
    async with aiomqtt.Client("127.0.0.1", port, protocol=aiomqtt.ProtocolVersion.V5) as client:
        await client.subscribe(SHARED_FILTER, qos=1)
        ready.set()
        async for message in client.messages:
            into.append(json.loads(message.payload)["seq"])


@needs_mosquitto
async def test_a_shared_subscription_splits_the_stream_and_seq_shows_it_is_complete(
    tmp_path: Path,
) -> None:
    with BrokerProcess("mosquitto") as mosquitto:
        config = make_config(mosquitto.url, tmp_path)
        outbox = Outbox.open(config.storage.path)
        outbox.append(events(600))
        consumers: list[list[int]] = [[], [], []]
        readies = [asyncio.Event() for _ in consumers]
        tasks = [
            asyncio.create_task(shared_consumer(mosquitto.port, got, ready))
            for got, ready in zip(consumers, readies, strict=True)
        ]
        for ready in readies:
            await ready.wait()
        uplink = Uplink(config, outbox, StatusBoard(outbox.backlog))
        up = asyncio.create_task(uplink.run())
        await run_until(lambda: sum(map(len, consumers)) >= 600)
        uplink.stop()
        await up
        await asyncio.sleep(0.2)
        for task in tasks:
            task.cancel()
    # Each consumer got a share, in seq order; together they hold every seq exactly once, so
    # a central server that merges them (or a shared store) can check 1..N for gaps.
    assert all(len(got) > 50 for got in consumers)
    assert all(got == sorted(got) for got in consumers)
    merged = sorted(s for got in consumers for s in got)
    assert merged == list(range(1, 601))


def tls_config(port: int, tmp: Path, pki: Path, password: str) -> Config:
    tmp.mkdir()
    (tmp / "password").write_text(password + "\n")
    plain = make_config(f"mqtts://127.0.0.1:{port}", tmp)
    mqtt = plain.mqtt.model_copy(
        update={
            "username": "gw",
            "password_file": tmp / "password",
            "ca_file": pki / "ca.crt",
            "cert_file": pki / "client.crt",
            "key_file": pki / "client.key",
        }
    )
    return plain.model_copy(update={"mqtt": mqtt})


@needs_mosquitto
@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
async def test_tls_with_a_client_certificate_and_a_password_from_a_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pki = tmp_path / "pki"
    pki.mkdir()
    make_pki(pki)
    with TlsMosquitto(pki) as broker:
        wrong = tls_config(broker.port, tmp_path / "wrong", pki, "guess")
        rejected = Outbox.open(wrong.storage.path)
        rejected.append(events(3))
        refused = Uplink(wrong, rejected, StatusBoard(rejected.backlog))
        right = tls_config(broker.port, tmp_path / "right", pki, "s3cret")
        accepted = Outbox.open(right.storage.path)
        accepted.append(events(5))
        uplink = Uplink(right, accepted, StatusBoard(accepted.backlog))
        tasks = [asyncio.create_task(u.run()) for u in (refused, uplink)]
        await run_until(lambda: accepted.backlog().count == 0, timeout=20)
        await run_until(lambda: "refused the credentials" in caplog.text)
        assert rejected.backlog().count == 3  # a wrong password publishes nothing
        for u in (refused, uplink):
            u.stop()
        await asyncio.gather(*tasks)
