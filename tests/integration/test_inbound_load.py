"""Load on the inbound topics against ``silentgate run`` and a real mosquitto, while an EM4100
reader on a pty is fed new cards (each read ten times over a second): a flood of 5,000 bad
commands a second for 20 s, and 20,000 retained offers waiting on the broker at start.

Asserted are bounded outcomes only: nothing actuated but the one valid command, the valid
command answered during the flood, memory growth under a generous bound, the content cache
within its bounds, and every card visit entered. The latencies (card enter p99 with and without
the load, time to answer the valid command) are printed on a ``FIGURES`` line (run with ``-s``)
and reported in docs/mqtt.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import aiomqtt
import pytest

from bench.proc import sample
from demo.broker import BrokerProcess
from drivers.em4100 import Em4100Frame
from firmware_sim.pty import SimPort
from firmware_sim.relay import RelayBoardSim
from gateway.rules.content import BOUNDS, MAX_FILE_BYTES
from gateway.tools.send import prepare, send_command
from tests.integration.inbound_rig import (
    RELAY,
    TRUST_CLOCK,
    base_of,
    gateway_config,
    publish_retained,
    relay_section,
    status_where,
)
from tests.integration.test_faults import Daemon, needs_mosquitto, until

pytestmark = [pytest.mark.broker, pytest.mark.slow, needs_mosquitto]

TICK_S: Final = 0.1
READS_PER_CARD: Final = 10
CARDS_PER_TICK: Final = 5  # 50 new cards a second, 100 presence events a second
FLOOD_RATE: Final = 5000
FLOOD_S: Final = 20.0
BASELINE_S: Final = 8.0
RSS_GROWTH_MB: Final = 100.0  # generous: a gateway without bounds grew by 700 MB in a flood
SAVE_S: Final = 6.0  # rules.content.SAVE_INTERVAL_S and the write
TRY_S: Final = 5.0  # a central server's wait for a result before it sends again
TRIES: Final = 20


@dataclass
class TimedFeeder:
    """Writes EM4100 frames for ``cards_per_tick`` new cards a tick, each read in
    ``READS_PER_CARD`` consecutive ticks, and notes when each card was first written."""

    port: SimPort
    cards_per_tick: int = CARDS_PER_TICK
    paused: bool = True
    first_read: dict[str, float] = field(default_factory=dict)

    async def run(self) -> None:
        active: list[list[int]] = []
        while True:
            started = time.monotonic()
            cards = len(self.first_read)
            new = [] if self.paused else list(range(cards, cards + self.cards_per_tick))
            active = [*active, new][-READS_PER_CARD:]
            frames = (Em4100Frame(version=0x42, tag_id=n).to_bytes() for t in active for n in t)
            await self.port.write(b"".join(frames))
            written = time.monotonic()
            for n in new:
                self.first_read[f"42{n:08X}"] = written
            await asyncio.sleep(max(0.03, TICK_S - (time.monotonic() - started)))


@dataclass
class Entries:
    """When each ``presence.enter`` arrived, by card id."""

    port: int
    base: str
    arrived: dict[str, float] = field(default_factory=dict)
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        async with aiomqtt.Client("127.0.0.1", self.port) as client:
            await client.subscribe(f"{self.base}/event/presence/enter", qos=1)
            self.ready.set()
            async for message in client.messages:
                event = json.loads(message.payload)
                self.arrived.setdefault(event["subject"]["id"], time.monotonic())

    def latencies(self, feeder: TimedFeeder, since: float, before: float) -> list[float]:
        return sorted(
            self.arrived[card] - at
            for card, at in feeder.first_read.items()
            if since <= at < before and card in self.arrived
        )

    async def settle(self, feeder: TimedFeeder) -> list[str]:
        """Stop feeding, wait (up to 20 s) for every card's enter; the cards without one."""
        feeder.paused = True
        cards = set(feeder.first_read)
        with contextlib.suppress(AssertionError):
            await until(lambda: cards <= set(self.arrived), 20, "an enter for every card")
        return sorted(cards - set(self.arrived))


def p99(values: list[float]) -> float | None:
    return round(values[int(0.99 * (len(values) - 1))], 3) if values else None


@dataclass
class Shop:
    daemon: Daemon
    feeder: TimedFeeder
    entries: Entries
    board: RelayBoardSim
    base: str

    def rss_mb(self) -> float:
        assert self.daemon.proc is not None
        return sample(self.daemon.proc.pid).rss_mb


@contextlib.asynccontextmanager
async def shop(tmp: Path, broker: BrokerProcess, gateway: str) -> AsyncIterator[Shop]:
    """The daemon with the card reader and a relay board, readers fed and visits collected."""
    tmp.mkdir(exist_ok=True)
    async with SimPort(tmp, "door") as door, SimPort(tmp, "relay") as relay_port:
        board = RelayBoardSim(relay_port, channels=2, answers_status=True)
        base = base_of(gateway)
        config = tmp / "gw.toml"
        extra = relay_section(relay_port) + TRUST_CLOCK
        config.write_text(
            gateway_config(tmp, broker.port, gateway=gateway, readers=[door], extra=extra)
        )
        daemon = Daemon(tmp, config)
        feeder, entries = TimedFeeder(door), Entries(broker.port, base)
        tasks = [asyncio.create_task(t.run()) for t in (board, feeder, entries)]
        try:
            await asyncio.wait_for(entries.ready.wait(), 15)
            daemon.start()
            await status_where(
                broker, base, daemon, lambda s: s["devices"] == {"door": "ok", RELAY: "ok"}, 60
            )
            feeder.paused = False
            yield Shop(daemon, feeder, entries, board, base)
            await daemon.stop()
        finally:
            if daemon.proc is not None and daemon.proc.poll() is None:
                daemon.kill()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def answer_during_flood(broker: BrokerProcess, base: str) -> tuple[float, int]:
    """Seconds from the first try to an executed result, and the tries it took. A flood beyond
    what the gateway takes is dropped by the broker, a valid command among it too, with no
    answer: the command is sent again under a new command_id after TRY_S without one, or at
    once after a busy refusal."""
    started = time.monotonic()
    for tries in range(1, TRIES + 1):
        command = prepare('{"action": "switch", "channel": 1, "on": true}', TRY_S)
        result = await send_command(broker.url, base, RELAY, command, TRY_S)
        if result is not None and result["ok"]:
            return time.monotonic() - started, tries
        assert result is None or result["error"].startswith("busy"), result
    raise AssertionError(f"no valid command executed in {TRIES} tries")


@pytest.mark.timeout(180)
async def test_a_flood_of_bad_commands_is_bounded_and_costs_the_readers_nothing(
    broker: BrokerProcess, tmp_path: Path
) -> None:
    async with shop(tmp_path, broker, "gw-flood") as s:
        first = prepare('{"action": "switch", "channel": 2, "on": true}', 30)
        assert (await send_command(broker.url, s.base, RELAY, first, 30) or {}).get("ok")
        await asyncio.sleep(BASELINE_S)
        flood_from, rss_before = time.monotonic(), s.rss_mb()
        flood = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.flood", "--port", str(broker.port), "--base", s.base,
            "--rate", str(FLOOD_RATE), "--seconds", str(FLOOD_S),
            "--replay", first["command_id"],
            stdout=subprocess.PIPE,
        )  # fmt: skip
        await asyncio.sleep(FLOOD_S / 2)
        answered_s, tries = await answer_during_flood(broker, s.base)
        rss_peak = rss_before
        while flood.returncode is None:
            rss_peak = max(rss_peak, s.rss_mb())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(flood.wait(), 1.0)
        flood_to = time.monotonic()
        sent = json.loads((await flood.communicate())[0])
        await asyncio.sleep(5.0)  # results of the flood drain
        rss_after = s.rss_mb()
        missing = await s.entries.settle(s.feeder)
        cards = dict(s.feeder.first_read)
        switches = [(w.channel, w.on) for w in s.board.switches]
    figures = {
        "flood": sent,
        "rss_mb": [round(rss_before), round(rss_peak), round(rss_after)],
        "valid_answered_s": round(answered_s, 3),
        "valid_tries": tries,
        "enter_p99_s_before": p99(s.entries.latencies(s.feeder, 0, flood_from)),
        "enter_p99_s_during": p99(s.entries.latencies(s.feeder, flood_from, flood_to)),
        "cards": len(cards),
        "not_entered": [(card, round(cards[card] - flood_from, 2)) for card in missing][:20],
    }
    print(f"\nFIGURES command_flood {json.dumps(figures)}")
    assert sent["sent"] >= FLOOD_RATE * FLOOD_S * 0.9, "the flood did not reach its rate"
    assert switches == [(2, True), (1, True)]  # the two valid commands, nothing else
    assert rss_peak - rss_before < RSS_GROWTH_MB
    assert missing == []  # every card visit entered


def offers(base: str, n: int) -> list[tuple[str, bytes]]:
    """``n`` retained offers of ~1.7 KB each, as a central server might hold one per customer."""
    text = "x" * 200
    return [
        (
            f"{base}/content/offer/{i:064x}",
            json.dumps({f"line{k}": f"{i}: {text}" for k in range(8)}).encode(),
        )
        for i in range(n)
    ]


@pytest.mark.timeout(240)
async def test_twenty_thousand_retained_offers_are_cached_within_bounds(tmp_path: Path) -> None:
    gateway = "gw-offers"
    with BrokerProcess("mosquitto") as broker:  # its own: 34 MB of retained messages
        async with shop(tmp_path / "empty", broker, gateway) as s:
            await asyncio.sleep(3.0)
            rss_without = s.rss_mb()
        retained = offers(base_of(gateway), 20_000)
        await publish_retained(broker, retained)
        async with shop(tmp_path / "full", broker, gateway) as s:
            started = time.monotonic()
            status = await status_where(
                broker,
                s.base,
                s.daemon,
                lambda st: st["counters"].get("content", {}).get("applied", 0) >= 20_000,
                timeout=120,
            )
            applied_s = time.monotonic() - started
            await asyncio.sleep(SAVE_S)  # a write of the cache after the last offer
            rss_with = s.rss_mb()
            missing = await s.entries.settle(s.feeder)
            cards = dict(s.feeder.first_read)
            latencies = s.entries.latencies(s.feeder, 0, time.monotonic())
        cache = (tmp_path / "full" / "outbox.content.json").stat().st_size
    figures = {
        "offers": len(retained),
        "payload_bytes": sum(len(p) for _, p in retained),
        "content": status["counters"]["content"],
        "all_applied_s": round(applied_s, 1),
        "cache_file_bytes": cache,
        "rss_mb": [round(rss_without), round(rss_with)],
        "enter_p99_s": p99(latencies),
        "enter_max_s": round(latencies[-1], 3) if latencies else None,
        "cards": len(cards),
        "not_entered": missing[:20],
    }
    print(f"\nFIGURES retained_offers {json.dumps(figures)}")
    assert status["counters"]["content"]["bytes"] <= BOUNDS["offer"].bytes
    assert cache <= MAX_FILE_BYTES
    assert rss_with - rss_without < RSS_GROWTH_MB
    assert missing == []  # every card visit entered
