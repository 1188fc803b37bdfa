"""A consumer in-process against a real mosquitto: hostile messages are counted and
acknowledged, good ones stored, and it goes on; its loss watch reports a gap and closes it; a
backlog of batches lands in transactions of bounded size."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiomqtt
import pytest
from sample_events import PREFIX, batch_topic, event, payload, topic_of

from central.consumer import MAX_ROWS, Consumer
from central.losswatch import LossWatch
from central.settings import Settings
from central.store import open_store
from demo.broker import BrokerProcess, find_mosquitto

pytestmark = [
    pytest.mark.broker,
    pytest.mark.timeout(60),
    pytest.mark.skipif(find_mosquitto() is None, reason="needs mosquitto (shared subscriptions)"),
]


@pytest.fixture
async def running(db_url: str) -> AsyncIterator[tuple[Consumer, BrokerProcess]]:
    with BrokerProcess("mosquitto") as broker:
        settings = Settings(broker=broker.url, client_id="c-test", grace_s=0.5, check_s=0.1)
        store = open_store(db_url)
        consumer = Consumer(settings, store, watch=LossWatch(store, settings.grace_s))
        task = asyncio.create_task(consumer.run())
        async with asyncio.timeout(10):
            await consumer.connected.wait()
        yield consumer, broker
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        store.close()


async def test_malformed_messages_are_counted_and_the_rest_stored(
    running: tuple[Consumer, BrokerProcess], db_url: str
) -> None:
    consumer, broker = running
    good = [event(1), event(2)]
    # Valid JSON that PostgreSQL's jsonb refuses (a lone surrogate): stored by SQLite, refused
    # as data by PostgreSQL, which fails its batch; retried message by message, the rest lands.
    odd = event(3, source={"device": "\ud800"})
    hostile = [
        (topic_of(event(3)), b"{not json"),
        (topic_of(event(3)), b"[" * 500 + b"]" * 500),
        (topic_of(event(3)), payload(event(3, gateway="gw-9"))),
        (topic_of(event(3)), payload(event(-3))),
        (batch_topic(), b"x" * (5 * 1024 * 1024)),  # over MQTT's Maximum Packet Size: never sent
        (f"{PREFIX}/store-042/gw-1/event", payload(event(3))),
        (batch_topic(), payload([event(4), "not an event"])),
    ]
    async with aiomqtt.Client("127.0.0.1", broker.port) as client:
        for topic, body in hostile:
            await client.publish(topic, body, qos=1)
        await client.publish(topic_of(good[0]), payload(good[0]), qos=1)
        await client.publish(batch_topic(), payload(good[1:]), qos=1)
        await client.publish(topic_of(odd), payload(odd), qos=1)
    # The oversize message is dropped by the broker (the CONNECT's Maximum Packet Size); the
    # one on ``.../event`` with no type arrives (``event/#`` matches its parent level too) and
    # is refused for its topic.
    expected = {"malformed": 1, "too_deep": 1, "topic": 2, "schema": 2}
    if db_url.startswith("postgresql"):
        expected["database"] = 1
    stored = 2 if "database" in expected else 3
    async with asyncio.timeout(20):
        while sum(consumer.figures.rejected.values()) + consumer.figures.stored < 9:
            await asyncio.sleep(0.02)
    assert consumer.figures.messages == 9
    assert consumer.figures.stored == stored
    assert dict(consumer.figures.rejected) == expected


async def test_a_gap_is_reported_and_closed_by_the_running_member(
    running: tuple[Consumer, BrokerProcess], caplog: pytest.LogCaptureFixture
) -> None:
    consumer, broker = running
    caplog.set_level(logging.INFO, "central.losswatch")
    docs = [event(seq) for seq in range(1, 8)]
    async with aiomqtt.Client("127.0.0.1", broker.port) as client:
        for doc in docs[:2] + docs[4:]:  # 3 and 4 are late
            await client.publish(topic_of(doc), payload(doc), qos=1)
        async with asyncio.timeout(20):
            while consumer.figures.gaps_reported == 0:
                await asyncio.sleep(0.05)
        assert "seq gap: store-042/gw-1 seq 3-4 (2 events) missing" in caplog.text
        for doc in docs[2:4]:
            await client.publish(topic_of(doc), payload(doc), qos=1)
    async with asyncio.timeout(20):
        while "seq gap closed: store-042/gw-1 seq 3-4" not in caplog.text:
            await asyncio.sleep(0.05)
    assert consumer.figures.stored == 7


async def test_a_backlog_of_batches_lands_in_transactions_of_bounded_size(
    running: tuple[Consumer, BrokerProcess], monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the database holds a first commit, batches of 1,500 and 6,000 events are checked
    and wait; then a transaction holds at most MAX_ROWS events unless its one message holds
    more, and every event lands once."""
    consumer, broker = running
    sizes = [1, 1500, 1500, 1500, 1500, 6000, 1500]
    commits: list[list[int]] = []
    held = threading.Event()
    commit = consumer._commit

    def counted(checked: Sequence[Any]) -> None:
        commits.append([len(c.rows) for c in checked])
        held.wait(10)
        commit(checked)

    monkeypatch.setattr(consumer, "_commit", counted)
    seq = 0
    async with aiomqtt.Client("127.0.0.1", broker.port) as client:
        for size in sizes:
            docs = [event(seq + i + 1) for i in range(size)]
            await client.publish(batch_topic(), payload(docs), qos=1)
            seq += size
            async with asyncio.timeout(10):
                while not commits:  # the first holds the database
                    await asyncio.sleep(0.01)
    async with asyncio.timeout(20):
        while consumer.figures.messages < len(sizes):
            await asyncio.sleep(0.01)
    held.set()
    async with asyncio.timeout(30):
        while consumer.figures.stored < seq:
            await asyncio.sleep(0.02)
    assert consumer.figures.stored == seq
    assert sorted(n for one in commits for n in one) == sorted(sizes)
    assert len(commits) > 2  # the waiting events did not go in one transaction
    for one in commits:
        assert len(one) == 1 or sum(one[:-1]) < MAX_ROWS
