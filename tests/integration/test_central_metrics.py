"""``silentgate central run --metrics-port``: the consumer's counters in Prometheus' format,
scraped from the running process after a stored event, a repeat, a rejected message and a gap
that outlived its grace period."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from pathlib import Path

import pytest
from central_rig import ConsumerProcess
from prometheus_client.parser import text_string_to_metric_families

from demo.broker import BrokerProcess, find_mosquitto, free_port
from gateway.events.ids import new_event_id
from gateway.uplink.brokerclient import connected
from tests.waiting import until

pytestmark = [
    pytest.mark.broker,
    pytest.mark.slow,
    pytest.mark.timeout(120),
    pytest.mark.skipif(find_mosquitto() is None, reason="needs mosquitto"),
]

TOPIC = "silentcommerce/v1/store-042/gw-1/event/presence/enter"


def event(seq: int) -> dict[str, object]:
    return {"schema": "silentcommerce.event/v1", "id": str(new_event_id()), "seq": seq,
            "type": "presence.enter", "ts": "2026-11-23T10:00:00.000Z", "store": "store-042",
            "gateway": "gw-1", "zone": "entrance", "subject": {"kind": "customer", "id": "c1"},
            "source": {"device": "door"}}  # fmt: skip


def samples(port: int) -> dict[str, float]:
    """Every sample of the endpoint by name and labels, e.g. 'x_total{reason="schema"}'; {} while
    the endpoint is not listening yet."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return {}
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            found[s.name + (f"{{{labels}}}" if labels else "")] = s.value
    return found


async def test_the_counters_are_served_in_prometheus_format(tmp_path: Path) -> None:
    port = free_port()
    with BrokerProcess("mosquitto") as broker:
        member = ConsumerProcess(
            tmp_path, "m-1", broker.url, f"sqlite:///{tmp_path / 'central.db'}",
            grace_s=0.5, args=["--metrics-port", str(port)],
        )  # fmt: skip
        member.start()
        try:
            first = event(1)
            async with connected(broker.url) as publisher:
                for doc in (first, first, event(3)):  # a repeat, then seq 2 never comes
                    await publisher.publish(TOPIC, json.dumps(doc), qos=1)
                await publisher.publish(TOPIC, b'{"not": "an event"}', qos=1)
            await until(lambda: samples(port).get("silentgate_central_open_gaps") == 1, timeout=30)
            got = await asyncio.to_thread(samples, port)
        finally:
            member.stop()
    assert got["silentgate_central_messages_total"] == 4
    assert got["silentgate_central_stored_events_total"] == 2
    assert got["silentgate_central_repeat_events_total"] == 1
    assert got['silentgate_central_rejected_total{reason="topic"}'] == 1
    assert got["silentgate_central_gaps_reported_total"] == 1
    assert got["silentgate_central_connected"] == 1
    assert got["silentgate_central_commit_seconds_count"] >= 1
    assert got['silentgate_central_commit_seconds_bucket{le="+Inf"}'] >= 1
