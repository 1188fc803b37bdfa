"""Commands through a real broker: ``silentgate send`` gets its result, and a flood of 1,000
bad commands (malformed, oversized, expired, unknown target, replayed) actuates nothing and gets
one result each."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from demo.broker import BrokerProcess
from gateway.commands import AnyCommand, CommandRouter
from gateway.commands.models import MAX_PAYLOAD_BYTES, OutputKind
from gateway.outbox import Outbox
from gateway.tools.send import prepare, send_command
from gateway.uplink.session import Uplink
from gateway.uplink.status import StatusBoard
from tests.integration.test_uplink import make_config, run_until

pytestmark = [pytest.mark.broker, pytest.mark.timeout(60)]

BASE = "silentcommerce/v1/store-042/gw-1"


class Recorder:
    def __init__(self, kind: OutputKind = "relay") -> None:
        self.kind: OutputKind = kind
        self.done: list[AnyCommand] = []

    async def execute(self, command: AnyCommand) -> None:
        self.done.append(command)


@pytest.fixture
async def gateway(broker: BrokerProcess, tmp_path: Path) -> AsyncIterator[Recorder]:
    config = make_config(broker.url, tmp_path)
    outbox = Outbox.open(config.storage.path)
    relay = Recorder()
    # silentgate send sets expires_at: judged by this machine's clock, trusted here whether or
    # not the kernel reports it synchronised (test_inbound_limits.py covers a clock that is not).
    router = CommandRouter.on_outbox(outbox, {"relay-1": relay}, trust_unsynchronised_clock=True)
    uplink = Uplink(config, outbox, StatusBoard(outbox.backlog), router)
    task = asyncio.create_task(uplink.run())
    await asyncio.wait_for(uplink.connected.wait(), 15)
    await asyncio.sleep(0.2)  # the subscription to P/cmd/+ follows the connection
    yield relay
    uplink.stop()
    await task
    outbox.close()


async def test_send_waits_for_the_result_of_an_executed_command(
    broker: BrokerProcess, gateway: Recorder
) -> None:
    command = prepare('{"action": "switch", "channel": 3, "on": true, "duration_s": 2}', 10)
    result = await send_command(broker.url, BASE, "relay-1", command, 10)
    assert result is not None
    assert result["ok"] is True
    assert result["command_id"] == command["command_id"]
    assert [c.command_id for c in gateway.done] == [command["command_id"]]
    again = await send_command(broker.url, BASE, "relay-1", command, 10)
    assert again is not None
    assert again["ok"] is False
    assert len(gateway.done) == 1


def bad_commands(replayed_id: str) -> list[tuple[str, bytes]]:
    good = {"action": "switch", "channel": 1, "on": True}
    out: list[tuple[str, bytes]] = []
    for i in range(200):
        out.append(("relay-1", b'{"command_id": "m-%d", "action": ' % i))  # malformed
        big = {**good, "command_id": f"o-{i}", "pad": "x" * MAX_PAYLOAD_BYTES}
        out.append(("relay-1", json.dumps(big).encode()))  # oversized
        late = {**good, "command_id": f"e-{i}", "expires_at": "2026-01-01T00:00:00Z"}
        out.append(("relay-1", json.dumps(late).encode()))  # expired
        out.append((f"no-such-{i}", json.dumps({**good, "command_id": f"u-{i}"}).encode()))
        out.append(("relay-1", json.dumps({**good, "command_id": replayed_id}).encode()))
    return out


async def test_a_thousand_bad_commands_actuate_nothing_and_each_gets_a_result(
    broker: BrokerProcess, gateway: Recorder
) -> None:
    first = prepare('{"action": "switch", "channel": 1, "on": false}', 10)
    assert (await send_command(broker.url, BASE, "relay-1", first, 10) or {}).get("ok") is True
    actuations = len(gateway.done)
    results: list[dict[str, Any]] = []
    async with aiomqtt.Client("127.0.0.1", broker.port) as client:
        await client.subscribe(f"{BASE}/cmd/+/result", qos=1)

        async def collect() -> None:
            async for message in client.messages:
                results.append(json.loads(message.payload))

        collector = asyncio.create_task(collect())
        flood = bad_commands(first["command_id"])
        for i in range(0, len(flood), 50):
            await asyncio.gather(
                *(client.publish(f"{BASE}/cmd/{o}", p, qos=1) for o, p in flood[i : i + 50])
            )
        await run_until(lambda: len(results) >= 1000, timeout=30)
        await asyncio.sleep(0.3)  # a result too many would show up here
        collector.cancel()
    assert len(gateway.done) == actuations
    assert len(results) == 1000
    assert not any(r["ok"] for r in results)
    errors = [r["error"] for r in results]
    for reason, expected in [
        ("malformed JSON", 200),
        ("exceeds", 200),
        ("expired", 200),
        ("unknown output", 200),
        ("replayed", 200),
    ]:
        assert sum(reason in e for e in errors) == expected, reason
