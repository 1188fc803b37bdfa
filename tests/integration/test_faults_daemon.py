"""Delivery faults against ``silentgate run`` as a process, with a real mosquitto.

A flood of bad commands reaches a daemon that drives a simulated LCUS relay board on a pty: the
board's own log of switches is the ground truth that nothing but the few valid commands
actuated, and every command gets exactly one result. A daemon with a 1 MiB outbox and no broker
is fed new EM4100 cards until the outbox passes its high-water mark while a second reader is
unplugged and replugged (its ``device.status`` events are the droppable type here), then on
until the file is full and presence events wait in memory. It keeps running, the first status
after a broker appears says the outbox is full and what it dropped, and every event it accepted
arrives.

Each test prints one ``FIGURES`` line (run with ``-s`` to see them).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import aiomqtt
import pytest

from demo.broker import BrokerProcess
from firmware_sim.pty import SimPort
from firmware_sim.relay import RelayBoardSim
from gateway.tools.send import prepare, send_command
from tests.integration.test_commands_broker import bad_commands
from tests.integration.test_faults import (
    BASE,
    Collector,
    Daemon,
    Feeder,
    PersistentMosquitto,
    needs_mosquitto,
    outbox_state,
    until,
)

pytestmark = [pytest.mark.broker, pytest.mark.slow]

RELAY: Final = "relay-1"
MAX_BYTES: Final = 1 << 20  # the smallest limit storage.max_bytes accepts
HIGH_WATER: Final = 0.8  # gateway.outbox.HIGH_WATER: droppable events go above this share
CARDS_PER_TICK: Final = 25  # ~500 events/s: past the high-water mark within seconds


def config_text(tmp: Path, broker_port: int, readers: list[SimPort], extra: str = "") -> str:
    sections = "".join(
        f'[[readers]]\nid = "{p.path.name}"\ndriver = "em4100"\nport = "{p.path}"\n'
        f'zone = "entrance"\n'
        for p in readers
    )
    return f"""
[site]
store = "store-042"
gateway = "gw-f"
[mqtt]
url = "mqtt://127.0.0.1:{broker_port}"
keepalive_s = 5
[privacy]
customer_ids = "raw"
{extra}
{sections}"""


@dataclass
class Results:
    """Every message on ``P/cmd/+/result``, as (output id, result object)."""

    port: int
    seen: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    async def collect(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            output_id = message.topic.value.split("/")[-2]
            self.seen.append((output_id, json.loads(message.payload)))


@contextlib.asynccontextmanager
async def relay_daemon(tmp: Path, broker: BrokerProcess) -> AsyncIterator[RelayBoardSim]:
    """A daemon with one silent card reader and a 2-channel relay board, until it reports the
    board ok in its status."""
    async with SimPort(tmp, "door") as door, SimPort(tmp, "relay") as relay_port:
        board = RelayBoardSim(relay_port, channels=2, answers_status=True)
        sim = asyncio.create_task(board.run())
        config = tmp / "gw.toml"
        # send_valid goes through silentgate send, which sets expires_at, and 200 of the bad
        # commands expired: both judged by this machine's clock, trusted whether or not the
        # kernel reports it synchronised.
        outputs = (
            "[commands]\ntrust_unsynchronised_clock = true\n"
            f'[storage]\npath = "{tmp / "outbox.db"}"\n'
            f'[[outputs]]\nid = "{RELAY}"\ndriver = "relay"\nport = "{relay_port.path}"\n'
            "channels = 2\nanswers_status = true\n"
        )
        config.write_text(config_text(tmp, broker.port, [door], outputs))
        daemon = Daemon(tmp, config)
        daemon.start()
        try:
            await relay_ok(broker)
            yield board
            await daemon.stop()
        finally:
            if daemon.proc is not None and daemon.proc.poll() is None:
                daemon.kill()
            sim.cancel()
            await asyncio.gather(sim, return_exceptions=True)


async def relay_ok(broker: BrokerProcess) -> None:
    """Wait for a retained online status that has the relay board ok."""
    async with asyncio.timeout(30), aiomqtt.Client("127.0.0.1", broker.port) as client:
        await client.subscribe(f"{BASE}/status", qos=1)
        async for message in client.messages:
            status = json.loads(message.payload)
            if status["state"] == "online" and status["devices"].get(RELAY) == "ok":
                return


async def send_valid(broker: BrokerProcess, text: str) -> dict[str, Any]:
    """A valid command, resent under a new id while the daemon's P/cmd/+ subscription may still
    be on its way (a command nobody subscribed to is dropped by the broker, never late)."""
    for _ in range(5):
        command = prepare(text, 5)
        result = await send_command(broker.url, BASE, RELAY, command, 5)
        if result is not None:
            assert result["ok"] is True, result
            return command
    raise AssertionError(f"no result for {text}")


async def flood(broker: BrokerProcess, commands: list[tuple[str, bytes]], results: Results) -> None:
    async with aiomqtt.Client("127.0.0.1", broker.port) as client:
        await client.subscribe(f"{BASE}/cmd/+/result", qos=1)
        collector = asyncio.create_task(results.collect(client))
        for i in range(0, len(commands), 50):
            await asyncio.gather(
                *(client.publish(f"{BASE}/cmd/{o}", p, qos=1) for o, p in commands[i : i + 50])
            )
        await until(lambda: len(results.seen) >= len(commands), 30, "a result for each command")
        await asyncio.sleep(0.5)  # a result too many would show up here
        collector.cancel()
        await asyncio.gather(collector, return_exceptions=True)


@pytest.mark.timeout(90)
async def test_a_thousand_bad_commands_to_a_daemon_actuate_nothing_and_each_gets_one_result(
    broker: BrokerProcess, tmp_path: Path
) -> None:
    async with relay_daemon(tmp_path, broker) as board:
        before = len(board.switches)
        first = await send_valid(broker, '{"action": "switch", "channel": 1, "on": true}')
        await send_valid(broker, '{"action": "switch", "channel": 2, "on": true}')
        commands = bad_commands(first["command_id"])
        results = Results(broker.port)
        await flood(broker, commands, results)
        await send_valid(broker, '{"action": "switch", "channel": 1, "on": false}')
        switches = [(s.channel, s.on) for s in board.switches[before:]]
    errors = [r["error"] for _, r in results.seen]
    by_kind = {
        kind: sum(kind in e for e in errors)
        for kind in ("malformed JSON", "exceeds", "expired", "unknown output", "replayed")
    }
    figures = {
        "sent": len(commands),
        "results": len(results.seen),
        "ok": sum(r["ok"] for _, r in results.seen),
        **by_kind,
        "valid_sent": 3,
        "actuations": len(switches),
    }
    print(f"\nFIGURES bad_commands_daemon {json.dumps(figures)}")
    # Only the three valid commands reached the board, in order.
    assert switches == [(1, True), (2, True), (1, False)]
    assert board.states == {1: False, 2: True}
    assert len(results.seen) == len(commands) == 1000
    assert not any(r["ok"] for _, r in results.seen)
    assert by_kind == dict.fromkeys(by_kind, 200)
    # An output that is not configured still gets its one refusal, on its own result topic.
    unknown = sorted(o for o, r in results.seen if "unknown output" in r["error"])
    assert unknown == sorted(f"no-such-{i}" for i in range(200))
    ids = [r["command_id"] for _, r in results.seen]
    for prefix in ("e-", "u-"):
        assert sorted(i for i in ids if i and i.startswith(prefix)) == sorted(
            f"{prefix}{n}" for n in range(200)
        )
    assert ids.count(first["command_id"]) == 200


def used_bytes(outbox: Path) -> int:
    """Bytes of the outbox in use, read beside the running daemon as the daemon counts them."""
    with contextlib.closing(sqlite3.connect(f"file:{outbox}?mode=ro", uri=True)) as conn:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
    return int((pages - free) * size)


async def until_held(feeder: Feeder, outbox: Path) -> None:
    """Feed on until the file is full: ``last_seq`` stands still while 300 more cards (600
    events, over a second of feed) go in, so presence events wait in memory."""
    while True:
        seq, cards = outbox_state(outbox)[0], feeder.cards
        await until(lambda: feeder.cards >= cards + 300, 20, "300 more cards")  # noqa: B023
        if outbox_state(outbox)[0] == seq:
            return


def dropped(outbox: Path) -> dict[str, int]:
    with contextlib.closing(sqlite3.connect(f"file:{outbox}?mode=ro", uri=True)) as conn:
        return dict(conn.execute("SELECT type, count FROM dropped"))


def safely(read: Any, default: Any) -> Any:
    try:
        return read()
    except sqlite3.Error:  # the daemon has not created the file yet
        return default


async def flap(port: SimPort, outbox: Path, times: int) -> None:
    """Unplug and replug ``port`` until ``times`` of its device.status events were dropped."""
    while dropped(outbox).get("device.status", 0) < times:
        port.hang_up()
        await asyncio.sleep(0.5)
        port.reconnect()
        await asyncio.sleep(1.0)


@needs_mosquitto
@pytest.mark.timeout(120)
async def test_a_daemon_past_its_outbox_limit_keeps_running_says_so_and_drops_only_droppable(
    tmp_path: Path,
) -> None:
    outbox = tmp_path / "outbox.db"
    broker = PersistentMosquitto()
    async with SimPort(tmp_path, "door", seed=1) as door, SimPort(tmp_path, "spare") as spare:
        storage = (
            f'[storage]\npath = "{outbox}"\nmax_bytes = {MAX_BYTES}\n'
            'droppable = ["device.status"]\n'
        )
        config = tmp_path / "gw.toml"
        config.write_text(config_text(tmp_path, broker.port, [door, spare], storage))
        feeder = Feeder(door, cards_per_tick=CARDS_PER_TICK)
        collector = Collector(broker.port)
        daemon = Daemon(tmp_path, config)
        tasks: list[asyncio.Task[None]] = []
        try:
            # The subscriber's persistent session exists before the daemon first runs, so it
            # misses nothing the daemon publishes the moment the broker is back.
            broker.start()
            tasks.append(asyncio.create_task(collector.run()))
            await asyncio.wait_for(collector.ready.wait(), 15)
            broker.stop()
            daemon.start()
            tasks.append(asyncio.create_task(feeder.run()))
            # Both readers reported in: their ports are open (pyserial flushes input at open).
            await until(lambda: safely(lambda: outbox_state(outbox)[0], 0) >= 2, 30, "readers")
            feeder.paused = False
            limit = HIGH_WATER * MAX_BYTES
            await until(lambda: safely(lambda: used_bytes(outbox), 0) > limit, 40, "high water")
            await flap(spare, outbox, 4)
            await asyncio.wait_for(until_held(feeder, outbox), 40)
            feeder.paused = True
            await asyncio.sleep(2.5)  # the last cards' exits are decided
            assert daemon.proc is not None
            assert daemon.proc.poll() is None, daemon.logs()  # no crash
            accepted_offline, _ = outbox_state(outbox)
            broker.start()
            await until(lambda: outbox_state(outbox)[1] == 0, 60, "delivery of the backlog")
            await daemon.stop()
            last_seq, _ = outbox_state(outbox)
            seqs = set(range(1, last_seq + 1))
            await until(lambda: {s for s, _ in collector.events} >= seqs, 20, "every seq")
        finally:
            if daemon.proc is not None and daemon.proc.poll() is None:
                daemon.kill()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            broker.stop()
    first = next(s for s in collector.statuses if s["state"] == "online")
    final = dropped(outbox)
    presence = [s for s, t in collector.types.items() if t.startswith("presence.")]
    figures = {
        "cards": feeder.cards,
        "accepted": last_seq,
        "accepted_while_offline": accepted_offline,
        "presence_accepted": len(presence),
        "delivered": len({s for s, _ in collector.events}),
        "dropped": final,
        "held_at_reconnect": first["outbox"].get("held", 0),
        "lost": first["outbox"].get("lost", 0),
        "bytes_at_reconnect": first["outbox"]["bytes"],
    }
    print(f"\nFIGURES outbox_limit_daemon {json.dumps(figures)}")
    assert first["outbox"]["full"] is True
    assert first["outbox"]["held"] > 0
    assert first["outbox"]["dropped"].get("device.status", 0) >= 4
    assert any("outbox full" in a for a in first["alerts"])
    assert set(final) == {"device.status"}  # droppable types only
    assert "lost" not in first["outbox"]  # present only when some were lost
    # Nothing accepted went missing, and every card written became an enter and an exit.
    assert {s for s, _ in collector.events} == set(range(1, last_seq + 1))
    entered = {f"42{n:08X}" for n in range(feeder.cards)}
    assert collector.entered == entered
    assert sum(t == "presence.exit" for t in collector.types.values()) == feeder.cards
