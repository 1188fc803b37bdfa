"""What the inbound tests against ``silentgate run`` share: configs, a daemon that drives a
simulated relay board, one command's round trip, and reading the retained status."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import aiomqtt

from demo.broker import BrokerProcess
from firmware_sim.pty import SimPort
from firmware_sim.relay import RelayBoardSim
from gateway.config import Config, parse_config
from tests.integration.test_faults import Daemon

PREFIX: Final = "silentcommerce/v1/store-042"
RELAY: Final = "relay-1"


def base_of(gateway: str) -> str:
    return f"{PREFIX}/{gateway}"


def gateway_config(
    tmp: Path,
    broker_port: int,
    *,
    gateway: str,
    readers: list[SimPort],
    extra: str = "",
    mqtt: str = "",
) -> str:
    """EM4100 readers at the entrance, raw card ids, the outbox in ``tmp``; ``extra`` holds
    more sections, ``mqtt`` more keys of ``[mqtt]``."""
    sections = "".join(
        f'[[readers]]\nid = "{p.path.name}"\ndriver = "em4100"\nport = "{p.path}"\n'
        'zone = "entrance"\n'
        for p in readers
    )
    return f"""
[site]
store = "store-042"
gateway = "{gateway}"
[mqtt]
url = "mqtt://127.0.0.1:{broker_port}"
keepalive_s = 5
{mqtt}
[storage]
path = "{tmp / "outbox.db"}"
[privacy]
customer_ids = "raw"
{extra}
{sections}"""


def uplink_config(tmp: Path, broker: BrokerProcess, gateway: str) -> Config:
    """For an in-process ``Uplink``: the reader is never opened."""
    text = gateway_config(tmp, broker.port, gateway=gateway, readers=[])
    reader = '[[readers]]\nid = "door"\ndriver = "em4100"\nport = "/dev/null"\nzone = "entrance"\n'
    return parse_config(text + reader)


def relay_section(port: SimPort) -> str:
    return (
        f'[[outputs]]\nid = "{RELAY}"\ndriver = "relay"\nport = "{port.path}"\n'
        "channels = 2\nanswers_status = true\n"
    )


TRUST_CLOCK: Final = "[commands]\ntrust_unsynchronised_clock = true\n"


@dataclass
class RelayGateway:
    daemon: Daemon
    board: RelayBoardSim
    base: str


@contextlib.asynccontextmanager
async def relay_gateway(
    tmp: Path,
    broker: BrokerProcess,
    *,
    gateway: str,
    mqtt: str = "",
    trust_clock: bool = True,
    readers: list[SimPort] | None = None,
    extra: str = "",
) -> AsyncIterator[RelayGateway]:
    """``silentgate run`` with a 2-channel LCUS relay board simulated on a pty, until its
    retained status has the board ok. ``trust_clock``: judge expires_at by this machine's
    clock whether or not the kernel reports it synchronised."""
    async with SimPort(tmp, "door") as door, SimPort(tmp, "relay") as relay_port:
        board = RelayBoardSim(relay_port, channels=2, answers_status=True)
        sim = asyncio.create_task(board.run())
        extra = relay_section(relay_port) + (TRUST_CLOCK if trust_clock else "") + extra
        config = tmp / "gw.toml"
        config.write_text(
            gateway_config(
                tmp, broker.port, gateway=gateway, readers=readers or [door], extra=extra, mqtt=mqtt
            )
        )
        daemon = Daemon(tmp, config)
        daemon.start()
        base = base_of(gateway)
        try:
            await status_where(broker, base, daemon, lambda s: s["devices"].get(RELAY) == "ok")
            yield RelayGateway(daemon, board, base)
            await daemon.stop()
        finally:
            if daemon.proc is not None and daemon.proc.poll() is None:
                daemon.kill()
            sim.cancel()
            await asyncio.gather(sim, return_exceptions=True)


async def status_where(
    broker: BrokerProcess,
    base: str,
    daemon: Daemon | None,
    pred: Callable[[dict[str, Any]], object],
    timeout: float = 30.0,
) -> dict[str, Any]:
    """The first retained or new ``P/status`` that is online and satisfies ``pred``; fails at
    once if ``daemon`` exits meanwhile."""
    async with asyncio.timeout(timeout), aiomqtt.Client("127.0.0.1", broker.port) as client:
        await client.subscribe(f"{base}/status", qos=1)

        async def find() -> dict[str, Any]:
            async for message in client.messages:
                status = dict(json.loads(message.payload))
                if status["state"] == "online" and pred(status):
                    return status
            raise AssertionError("the subscription ended")

        finder = asyncio.create_task(find())
        while not finder.done():
            if daemon is not None and daemon.proc is not None and daemon.proc.poll() is not None:
                finder.cancel()
                raise AssertionError(f"the daemon exited:\n{daemon.logs()}")
            await asyncio.wait({finder}, timeout=0.1)
        return finder.result()


async def retained_status(broker: BrokerProcess, base: str) -> dict[str, Any]:
    async with asyncio.timeout(10), aiomqtt.Client("127.0.0.1", broker.port) as client:
        await client.subscribe(f"{base}/status", qos=1)
        async for message in client.messages:
            return dict(json.loads(message.payload))
    raise AssertionError("no retained status")


async def exchange(
    broker: BrokerProcess, base: str, output_id: str, payload: bytes, timeout: float = 15.0
) -> dict[str, Any]:
    """Publish ``payload`` to ``P/cmd/{output_id}`` and return the first result on its topic."""
    topic = f"{base}/cmd/{output_id}"
    async with asyncio.timeout(timeout), aiomqtt.Client("127.0.0.1", broker.port) as client:
        await client.subscribe(f"{topic}/result", qos=1)
        await client.publish(topic, payload, qos=1)
        async for message in client.messages:
            return dict(json.loads(message.payload))
    raise AssertionError("no result")


async def publish_once(broker: BrokerProcess, topic: str, payload: bytes) -> None:
    """Publish once, QoS 1, and wait for the broker's PUBACK."""
    async with aiomqtt.Client("127.0.0.1", broker.port) as client:
        await client.publish(topic, payload, qos=1)


async def publish_retained(broker: BrokerProcess, items: list[tuple[str, bytes]]) -> None:
    """Retained messages, QoS 1, 100 in flight at a time; an empty payload clears one."""
    async with aiomqtt.Client("127.0.0.1", broker.port, max_inflight_messages=100) as client:
        client.pending_calls_threshold = 200  # our window, not a backlog
        for i in range(0, len(items), 100):
            await asyncio.gather(
                *(client.publish(t, p, qos=1, retain=True) for t, p in items[i : i + 100])
            )


def rejected(status: dict[str, Any], kind: str, reason: str) -> int:
    return int(status.get("counters", {}).get("inbound_rejected", {}).get(kind, {}).get(reason, 0))
