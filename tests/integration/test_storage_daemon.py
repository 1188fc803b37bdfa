"""Storage faults against ``silentgate run`` as a process, with a real mosquitto.

The daemon's outbox lives on a small tmpfs of its own (``smalldisk.py``) that the test fills,
frees and makes read-only while a reader on a pty is fed new EM4100 cards and a simulated relay
board takes commands. Whatever the disk does, the daemon keeps running, says what is wrong in its
retained status, answers every command (a refusal while nothing can be recorded) and, once the
disk is usable again, delivers every event it accepted: every ``seq`` from 1 to ``last_seq``.

Each test prints one ``FIGURES`` line (run with ``-s`` to see them).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest
from smalldisk import SmallDisk, unshare_works

from firmware_sim.pty import SimPort
from firmware_sim.relay import RelayBoardSim
from gateway.send import prepare, send_command
from tests.integration.test_faults import (
    BASE,
    Collector,
    Feeder,
    PersistentMosquitto,
    needs_mosquitto,
    until,
)

pytestmark = [
    pytest.mark.broker,
    pytest.mark.slow,
    needs_mosquitto,
    pytest.mark.skipif(not unshare_works(), reason="needs unprivileged user namespaces"),
]

RELAY: Final = "relay-1"
DISK_BYTES: Final = 16 << 20
SWITCH: Final = '{"action": "switch", "channel": 1, "on": true}'


def config_text(tmp: Path, disk: Path, broker_port: int, door: SimPort, relay: SimPort) -> str:
    return f"""
[site]
store = "store-042"
gateway = "gw-f"
[mqtt]
url = "mqtt://127.0.0.1:{broker_port}"
keepalive_s = 5
[storage]
path = "{disk / "outbox.db"}"
[privacy]
customer_ids = "raw"
[[readers]]
id = "door"
driver = "em4100"
port = "{door.path}"
zone = "entrance"
[[outputs]]
id = "{RELAY}"
driver = "relay"
port = "{relay.path}"
channels = 2
answers_status = true
"""


@dataclass
class Rig:
    tmp: Path
    disk: SmallDisk
    broker: PersistentMosquitto
    collector: Collector
    feeder: Feeder
    board: RelayBoardSim

    async def accepted(self) -> int:
        """The daemon's last_seq, 0 before its outbox exists; the daemon must be running."""
        self.alive()
        return (await self.disk.outbox_state())[0]

    async def backlog(self) -> int:
        return (await self.disk.outbox_state())[1]

    def alive(self) -> None:
        assert self.disk.exited is None, self.logs()

    def logs(self) -> str:
        return (self.tmp / "daemon.log").read_text(errors="replace")

    async def command(self) -> dict[str, Any]:
        result = await send_command(self.broker.url, BASE, RELAY, prepare(SWITCH, 10), 10)
        assert result is not None, "no result"
        return result


@contextlib.asynccontextmanager
async def rig(tmp: Path) -> AsyncIterator[Rig]:
    """A broker with the collector's session on it, a fed card reader, a relay board and the
    daemon (not started yet) on a small disk of its own."""
    broker = PersistentMosquitto()
    broker.start()
    async with SimPort(tmp, "door", seed=1) as door, SimPort(tmp, "relay") as relay:
        board = RelayBoardSim(relay, channels=2, answers_status=True)
        config = tmp / "gw.toml"
        config.write_text(config_text(tmp, tmp / "disk", broker.port, door, relay))
        collector, feeder = Collector(broker.port), Feeder(door)
        command = [sys.executable, "-m", "gateway", "run", "--config", str(config)]
        tasks = [asyncio.create_task(t) for t in (board.run(), collector.run(), feeder.run())]
        try:
            await asyncio.wait_for(collector.ready.wait(), 15)
            async with SmallDisk(tmp / "disk", DISK_BYTES, command, tmp / "daemon.log") as disk:
                yield Rig(tmp, disk, broker, collector, feeder, board)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            broker.stop()


async def eventually(cond: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def until_held(r: Rig) -> None:
    """Feed on until ``last_seq`` stands still while 200 more cards (400 events) go in."""
    while True:
        seq, cards = await r.accepted(), r.feeder.cards
        await until(lambda: r.feeder.cards >= cards + 200, 20, "200 more cards")  # noqa: B023
        if await r.accepted() == seq:
            return


async def delivered_all(r: Rig) -> int:
    """Stop feeding, let the daemon deliver everything and stop it; its last_seq."""
    r.feeder.paused = True
    await asyncio.sleep(2.5)  # the last cards' exits are decided
    await eventually(lambda: _is(r.backlog(), 0), 60, "an empty outbox")
    assert await r.disk.do("stop") == "exit 0", r.logs()
    last_seq = await r.accepted()
    seqs = set(range(1, last_seq + 1))
    await until(lambda: {s for s, _ in r.collector.events} >= seqs, 30, "every seq")
    return last_seq


@pytest.mark.timeout(180)
async def test_a_full_disk_during_an_outage_is_a_status_and_every_accepted_event_arrives(
    tmp_path: Path,
) -> None:
    async with rig(tmp_path) as r:
        await r.disk.do("start")
        await eventually(lambda: _at_least(r.accepted(), 2), 30, "the reader and relay board")
        r.feeder.paused = False
        await until(lambda: len(r.collector.events) > 200, 30, "events delivered")
        r.broker.stop()
        await asyncio.sleep(1.5)  # a backlog builds up in the file
        backlog_before_fill = await r.backlog()
        filled = await r.disk.do("fill")
        await asyncio.wait_for(until_held(r), 60)
        r.alive()
        accepted_while_full = await r.accepted()
        reconnected = len(r.collector.statuses)
        r.broker.start()
        await until(lambda: _online(r.collector.statuses[reconnected:]), 30, "a status")
        first = _online(r.collector.statuses[reconnected:])[0]
        # Delivery goes on from the file while the disk is still full.
        await eventually(
            lambda: _at_least(r.accepted(), accepted_while_full + 1), 30, "held events stored"
        )
        refused = await r.command()
        r.alive()
        freed = await r.disk.do("free")
        await until(lambda: _storage(r.collector.statuses[-1]) == "ok", 30, "storage ok")
        executed = await r.command()
        last_seq = await delivered_all(r)
    received = {s for s, _ in r.collector.events}
    figures = {
        "disk_bytes": DISK_BYTES,
        "filler_bytes": int(filled.split()[1]),
        "freed_bytes": int(freed.split()[1]),
        "backlog_before_fill": backlog_before_fill,
        "accepted_while_full": accepted_while_full,
        "held_at_reconnect": first["outbox"].get("held", 0),
        "accepted": last_seq,
        "delivered": len(received),
        "cards": r.feeder.cards,
    }
    print(f"\nFIGURES full_disk_daemon {json.dumps(figures)}")
    assert first["storage"]["state"] == "full", first
    assert "disk" in first["storage"]["reason"]
    assert first["outbox"]["held"] > 0
    assert refused["ok"] is False
    assert "storage" in refused["error"]
    assert executed["ok"] is True, executed
    assert not any("lost" in s.get("outbox", {}) for s in r.collector.statuses)
    assert received == set(range(1, last_seq + 1))
    assert r.collector.entered == {f"42{n:08X}" for n in range(r.feeder.cards)}
    assert [(s.channel, s.on) for s in r.board.switches] == [(1, True)]


async def _at_least(value: Awaitable[int], bound: int) -> bool:
    return await value >= bound


async def _is(value: Awaitable[int], expected: int) -> bool:
    return await value == expected


def _online(statuses: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in statuses if s["state"] == "online"]


def _storage(status: dict[str, Any]) -> str | None:
    state: str | None = status.get("storage", {}).get("state")
    return state
