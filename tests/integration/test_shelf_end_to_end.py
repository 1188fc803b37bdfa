"""Shelf scales end to end: a simulated ThingMagic reader and a simulated Modbus scale on ptys ->
``silentgate run`` as a separate process -> a real broker -> a subscriber.

An item sits on shelf-a, on the scale. It is picked up (its tag leaves the shelf zone and its
grams leave the scale), put back later, and then a bag of loose apples without a tag is put on
the same shelf. Expected: one ``item.pickup`` and one ``item.putback`` carrying the item's
weight, and a ``shelf.weight`` for every settled change, the apples' included.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from harness import HeldClock, start_daemon, stop_daemon, wait_for

from demo.broker import BrokerProcess
from drivers.modbus_scale import generic_channel
from firmware_sim.epc import Sgtin
from firmware_sim.modbus_scale import Channel, ModbusScaleSim
from firmware_sim.pty import SimPort
from firmware_sim.scenario import Scenario, Subject, Visit
from firmware_sim.shelf import Shelf, ShelfAction, item_grams, play, shelf_actions, stock
from firmware_sim.thingmagic import ThingMagicSim
from firmware_sim.traffic import Antenna, TrafficModel
from gateway.tools.tail import subscribe

pytestmark = [pytest.mark.broker, pytest.mark.slow, pytest.mark.timeout(90)]

ITEM = Sgtin(1, "0614141", "812345", 42).to_hex()
ITEM_G = item_grams(ITEM)
APPLES_G = 300.0
PICKUP_AT, PUTBACK_AT, APPLES_AT = 3.0, 10.0, 17.0
SCENARIO = Scenario(
    zones=("entrance", "shelf-a"),
    subjects=(Subject(ITEM, "item"),),
    visits=(Visit(ITEM, "shelf-a", 0.0, PICKUP_AT), Visit(ITEM, "shelf-a", PUTBACK_AT, 1000.0)),
    duration=1000.0,
)


def config_text(tmp: Path, reader: str, scale: str, broker: str) -> str:
    return f"""
[site]
store = "store-042"
gateway = "gw-shelf"
[mqtt]
url = "{broker}"
[storage]
path = "{tmp / "outbox.db"}"
[privacy]
customer_ids = "raw"
[[readers]]
id = "door"
driver = "thingmagic"
port = "{reader}"
antennas = {{ 1 = "entrance", 2 = "shelf-a" }}
[[sensors]]
id = "shelf-a-scale"
driver = "modbus-scale"
port = "{scale}"
zone = "shelf-a"
"""


@dataclass
class Rig:
    reader: SimPort
    scale: SimPort
    clock: HeldClock


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    clock = HeldClock()
    reader = SimPort(tmp_path, "door", seed=5)
    scale = SimPort(tmp_path, "scale", seed=6)
    reader.open()
    scale.open()
    antennas = [Antenna("door", i + 1, z) for i, z in enumerate(SCENARIO.zones)]
    model = TrafficModel(miss_rate=0.1, bleed_rate_hz=0.0)
    shelf = Shelf(noise_g=0.5, seed=7)
    stock(shelf, SCENARIO, "shelf-a")
    hands = [
        *shelf_actions(SCENARIO, "shelf-a"),
        ShelfAction(APPLES_AT, "place", "apples", APPLES_G),
    ]
    async with asyncio.TaskGroup() as tg:
        tasks = [
            tg.create_task(
                ThingMagicSim(reader, SCENARIO, antennas, model=model, clock=clock).run()
            ),
            tg.create_task(ModbusScaleSim(scale, [Channel(generic_channel(1), shelf)]).run()),
            tg.create_task(play(shelf, hands, clock)),
        ]
        yield Rig(reader, scale, clock)
        for task in tasks:
            task.cancel()
        reader.close()
        scale.close()


async def test_pickup_putback_and_untagged_goods(
    broker: BrokerProcess, rig: Rig, tmp_path: Path
) -> None:
    config = tmp_path / "gw.toml"
    config.write_text(config_text(tmp_path, str(rig.reader.path), str(rig.scale.path), broker.url))
    events: list[dict[str, Any]] = []
    ready = asyncio.Event()
    listener = asyncio.create_task(
        subscribe(
            broker.url,
            "silentcommerce/v1/store-042/gw-shelf/event/#",
            lambda kind, obj: events.append(obj),
            ready,
        )
    )
    await ready.wait()

    def ok(device: str) -> Any:
        return lambda e: e.get("device") == device and e.get("state") == "ok"

    def apples(e: dict[str, Any]) -> bool:
        return e["type"] == "shelf.weight" and abs(float(e["delta_g"]) - APPLES_G) < 5

    daemon = start_daemon(config)
    try:
        await wait_for(events, ok("door"), timeout=30)
        await wait_for(events, ok("shelf-a-scale"), timeout=30)
        await asyncio.sleep(1.0)  # the scale's first settled level is the baseline
        rig.clock.start()
        await wait_for(events, apples, timeout=40)
        await asyncio.sleep(1.0)  # anything late would show up now
    finally:
        log = await stop_daemon(daemon)
    listener.cancel()

    moves = [e for e in events if e["type"].startswith("item.")]
    assert [m["type"] for m in moves] == ["item.pickup", "item.putback"], log
    pickup, putback = moves
    assert pickup["weight_delta_g"] == pytest.approx(-ITEM_G, abs=3.0)
    assert putback["weight_delta_g"] == pytest.approx(ITEM_G, abs=3.0)
    for m in moves:
        assert m["zone"] == "shelf-a"
        assert m["subject"] == {
            "kind": "item",
            "id": ITEM,
            "gtin": "80614141123458",
            "serial": "42",
        }
    weights = [e for e in events if e["type"] == "shelf.weight"]
    assert [round(w["delta_g"] / 10) for w in weights] == [
        round(-ITEM_G / 10), round(ITEM_G / 10), round(APPLES_G / 10)
    ], log  # fmt: skip
    assert all(w["sensor"] == "shelf-a-scale" and w["zone"] == "shelf-a" for w in weights)
    assert weights[-1]["grams"] == pytest.approx(ITEM_G + APPLES_G, abs=2.0)
    seqs = [e["seq"] for e in events]
    assert sorted(seqs) == list(range(1, len(seqs) + 1))
