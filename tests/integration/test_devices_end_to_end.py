"""The devices the other end-to-end tests leave out, through ``silentgate run`` as a separate
process and a real broker: a PN532 card reader, an LCUS relay board and OpenEPaperLink labels,
each against its simulator (ptys for the serial ones, a socket for the access point); and a
reader unplugged and plugged back in while the daemon runs.

The card is put on and taken off the reader by a ``Hand``: a scenario clock that runs on, but
that the test moves forward into or out of the card's visits, so presence changes when the test
says (once the daemon is up), not at a wall-clock time a loaded machine may already have missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import pytest
from harness import start_daemon, stop_daemon, wait_for

from demo.broker import BrokerProcess
from firmware_sim.epc import customer_epc
from firmware_sim.esl import AccessPointSim
from firmware_sim.pn532 import Pn532Sim
from firmware_sim.pty import SimPort
from firmware_sim.relay import RelayBoardSim
from firmware_sim.scenario import Scenario, Subject, Visit
from firmware_sim.thingmagic import ThingMagicSim
from firmware_sim.traffic import Antenna, TrafficModel
from gateway.tools.send import prepare, send_command
from gateway.tools.tail import subscribe

pytestmark = [pytest.mark.broker, pytest.mark.slow, pytest.mark.timeout(90)]

SECRET: Final = "devices-secret-of-16-bytes"
BASE: Final = "silentcommerce/v1/store-042/gw-dev"
CARD: Final = "04A1B2C3D4E580"  # a 7-byte UID, as an NTAG215 has
EPC: Final = customer_epc("C0FFEE", 9)
MAC: Final = "0000021F8A3C4D5E"
# The card lies on the reader during [FIRST) and [SECOND), scenario seconds; the Hand jumps to
# these times, and no test runs long enough to reach the next one by itself.
FIRST: Final = (100.0, 200.0)
SECOND: Final = (300.0, 400.0)
WAIT_S: Final = 30.0


def scenario(raw_id: str) -> Scenario:
    return Scenario(
        zones=("counter",),
        subjects=(Subject(raw_id, "customer"),),
        visits=(Visit(raw_id, "counter", *FIRST), Visit(raw_id, "counter", *SECOND)),
        duration=1000.0,
    )


class Hand:
    """Scenario time that runs from 0 (nothing on the reader) and can be moved forward."""

    def __init__(self) -> None:
        self.offset = -time.monotonic()

    def __call__(self) -> float:
        return time.monotonic() + self.offset

    def jump_to(self, t: float) -> None:
        assert t > self(), "scenario time only runs forward"
        self.offset = t - time.monotonic()


def seconds(earlier: dict[str, Any], later: dict[str, Any]) -> float:
    """Time between two events by their own timestamps (the daemon's clock)."""
    start, end = (datetime.fromisoformat(e["ts"]) for e in (earlier, later))
    return round((end - start).total_seconds(), 3)


def pseudonym(raw_id: str) -> str:
    return hmac.new(SECRET.encode(), raw_id.encode(), hashlib.sha256).hexdigest()


def config_text(tmp: Path, broker: str, devices: str) -> str:
    (tmp / "secret").write_text(SECRET + "\n")
    return f"""
[site]
store = "store-042"
gateway = "gw-dev"
[mqtt]
url = "{broker}"
[storage]
path = "{tmp / "outbox.db"}"
[privacy]
secret_file = "{tmp / "secret"}"
[tags]
customer_prefixes = ["C0FFEE"]
{devices}
"""


def pn532_text(port: SimPort) -> str:
    return f"""
[[readers]]
id = "cards"
driver = "pn532"
port = "{port.path}"
zone = "counter"
poll_interval_s = 0.1
"""


def thingmagic_text(port: SimPort) -> str:
    return f"""
[[readers]]
id = "door"
driver = "thingmagic"
port = "{port.path}"
antennas = {{ 1 = "counter" }}
"""


def outputs_text(relay: SimPort, ap: AccessPointSim) -> str:
    # Commands go out through silentgate send, which sets expires_at: judged by this machine's
    # clock, trusted whether or not the kernel reports it synchronised.
    return f"""
[commands]
trust_unsynchronised_clock = true
[[outputs]]
id = "door-lock"
driver = "relay"
port = "{relay.path}"
channels = 2
answers_status = true
[[outputs]]
id = "labels"
driver = "openepaperlink"
url = "{ap.base_url}"
tags = {{ cheese = "{MAC}" }}
"""


@dataclass
class Events:
    """Everything the daemon publishes under ``BASE/event``, in arrival order."""

    items: list[dict[str, Any]] = field(default_factory=list)

    async def until(self, pred: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        await wait_for(self.items, pred, WAIT_S)
        return next(e for e in self.items if pred(e))

    def last_seq(self) -> int:
        return max((e["seq"] for e in self.items), default=0)


def status(device: str, state: str, after: int = 0) -> Callable[[dict[str, Any]], bool]:
    return lambda e: (e["type"], e.get("device"), e.get("state")) == (
        "device.status", device, state
    ) and e["seq"] > after  # fmt: skip


def presence(kind: str, subject: str, after: int = 0) -> Callable[[dict[str, Any]], bool]:
    return lambda e: (e["type"], e.get("zone"), e.get("subject", {}).get("id")) == (
        kind, "counter", subject
    ) and e["seq"] > after  # fmt: skip


@contextlib.asynccontextmanager
async def listening(broker: BrokerProcess) -> AsyncIterator[Events]:
    events = Events()
    ready = asyncio.Event()
    task = asyncio.create_task(
        subscribe(broker.url, f"{BASE}/event/#", lambda _kind, obj: events.items.append(obj), ready)
    )
    await asyncio.wait_for(ready.wait(), WAIT_S)
    try:
        yield events
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def running(*coros: Any) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(c) for c in coros]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def command(broker: BrokerProcess, output: str, fields: dict[str, Any]) -> dict[str, Any]:
    result = await send_command(
        broker.url, BASE, output, prepare(json.dumps(fields), WAIT_S), WAIT_S
    )
    assert result is not None, f"no result from {output}"
    return result


async def test_a_card_a_relay_and_a_label_through_the_daemon(
    broker: BrokerProcess, tmp_path: Path
) -> None:
    hand = Hand()
    async with (
        SimPort(tmp_path, "cards", seed=2) as card_port,
        SimPort(tmp_path, "relay") as relay_port,
        AccessPointSim() as ap,
        listening(broker) as events,
    ):
        ap.add_tag(MAC)
        reader = Pn532Sim(card_port, scenario(CARD), "counter", seed=2, clock=hand)
        relay = RelayBoardSim(relay_port, channels=2)
        config = tmp_path / "gw.toml"
        devices = pn532_text(card_port) + outputs_text(relay_port, ap)
        config.write_text(config_text(tmp_path, broker.url, devices))
        async with running(reader.run(), relay.run()):
            daemon = start_daemon(config)
            try:
                for device in ("cards", "door-lock", "labels"):
                    await events.until(status(device, "ok"))
                hand.jump_to(FIRST[0])
                enter = await events.until(presence("presence.enter", pseudonym(CARD)))
                hand.jump_to(FIRST[1])
                left = await events.until(presence("presence.exit", pseudonym(CARD)))
                switched = await command(
                    broker, "door-lock", {"action": "switch", "channel": 1, "on": True}
                )
                shown = await command(
                    broker, "labels", {"action": "show", "mac": MAC, "lines": ["Käse", "2,99 €"]}
                )
            finally:
                log = await stop_daemon(daemon)
    assert left["seq"] > enter["seq"], log
    assert enter["subject"]["kind"] == "customer"
    # The card's UID never leaves the gateway: only its keyed pseudonym does.
    assert all(CARD not in json.dumps(e) for e in events.items)
    assert reader.stats.cards_reported > 0
    assert (switched["ok"], shown["ok"]) == (True, True), (switched, shown, log)
    assert relay.states == {1: True, 2: False}
    assert [(s.channel, s.on) for s in relay.switches] == [(1, True)]
    assert ap.tag(MAC).texts() == ["Käse", "2,99 €"]


@dataclass
class Unpluggable:
    """A reader's simulator on its pty, with the config that points the daemon at it."""

    device: str
    raw_id: str
    text: str
    sim: Pn532Sim | ThingMagicSim


def make_reader(kind: str, port: SimPort, hand: Hand) -> Unpluggable:
    if kind == "pn532":
        sim = Pn532Sim(port, scenario(CARD), "counter", seed=4, clock=hand)
        return Unpluggable("cards", CARD, pn532_text(port), sim)
    model = TrafficModel(miss_rate=0.1, bleed_rate_hz=0.0)
    antennas = [Antenna("door", 1, "counter")]
    tm = ThingMagicSim(port, scenario(EPC), antennas, model=model, seed=4, clock=hand)
    return Unpluggable("door", EPC, thingmagic_text(port), tm)


@pytest.mark.parametrize("kind", ["pn532", "thingmagic"])
async def test_an_unplugged_reader_is_down_then_ok_and_reads_resume_in_the_same_daemon(
    broker: BrokerProcess, tmp_path: Path, kind: str
) -> None:
    hand = Hand()
    async with (
        SimPort(tmp_path, "reader", seed=4) as port,
        listening(broker) as events,
    ):
        reader = make_reader(kind, port, hand)
        config = tmp_path / "gw.toml"
        config.write_text(config_text(tmp_path, broker.url, reader.text))
        subject = pseudonym(reader.raw_id)
        async with running(reader.sim.run()):
            daemon = start_daemon(config)
            try:
                await events.until(status(reader.device, "ok"))
                hand.jump_to(FIRST[0])
                first = await events.until(presence("presence.enter", subject))
                hand.jump_to(FIRST[1])
                await events.until(presence("presence.exit", subject))
                await reader.sim.hang_up(down_s=1.0)
                down = await events.until(status(reader.device, "down"))
                back = await events.until(status(reader.device, "ok", after=down["seq"]))
                hand.jump_to(SECOND[0])
                again = await events.until(presence("presence.enter", subject, after=back["seq"]))
                alive = daemon.poll() is None
            finally:
                log = await stop_daemon(daemon)
    assert alive, log  # the same process throughout: no restart hid the unplug
    assert reader.sim.stats.hang_ups == 1
    assert first["seq"] < down["seq"] < back["seq"] < again["seq"]
    assert down["detail"], down
    seqs = [e["seq"] for e in events.items]
    assert seqs == sorted(set(seqs)), "seq restarted, repeated or went back"
    assert seqs == list(range(seqs[0], seqs[-1] + 1)), log
    assert all(reader.raw_id not in json.dumps(e) for e in events.items)
    figures = {"down_to_ok_s": seconds(down, back), "ok_to_enter_s": seconds(back, again)}
    print(f"\nFIGURES unplug_{kind} {json.dumps(figures)}")
