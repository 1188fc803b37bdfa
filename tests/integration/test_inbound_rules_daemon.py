"""Pushed content that a rule's template cannot format, against ``silentgate run``: a price of
1 followed by 400 zeros for ``{content.zone.price:.2f}``. Retained on the broker, it is refused
as content; already in the cache file from an older gateway, it is refused at load. Either way
the customer's dwell shows the template's fallback on the (simulated) display, and the daemon
runs on."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from demo.broker import BrokerProcess, free_port
from firmware_sim.display import DisplaySim
from firmware_sim.epc import customer_epc
from firmware_sim.pty import SimPort
from firmware_sim.scenario import Scenario, Subject, Visit
from firmware_sim.thingmagic import ThingMagicSim
from firmware_sim.traffic import Antenna, TrafficModel
from tests.integration.inbound_rig import base_of, publish_retained, rejected, status_where
from tests.integration.test_faults import Daemon
from tests.waiting import until

pytestmark = [pytest.mark.broker, pytest.mark.slow, pytest.mark.timeout(120)]

HUGE = "1" + "0" * 400
SHOWN = "n/a at shelf-a"
CUSTOMER = customer_epc("C0FFEE", 12)
SCENARIO = Scenario(
    zones=("entrance", "shelf-a"),
    subjects=(Subject(CUSTOMER, "customer"),),
    visits=(Visit(CUSTOMER, "shelf-a", 2.0, 600.0),),
    duration=600.0,
)


def config_text(tmp: Path, reader: SimPort, display: SimPort, port: int, gateway: str) -> str:
    (tmp / "secret").write_text("rules-secret-0123456789\n")
    return f"""
[site]
store = "store-042"
gateway = "{gateway}"
[mqtt]
url = "mqtt://127.0.0.1:{port}"
[storage]
path = "{tmp / "outbox.db"}"
[privacy]
secret_file = "{tmp / "secret"}"
[tags]
customer_prefixes = ["C0FFEE"]
[[readers]]
id = "door"
driver = "thingmagic"
port = "{reader.path}"
antennas = {{ 1 = "entrance", 2 = "shelf-a" }}
[[zones]]
id = "shelf-a"
dwell_s = 1.0
[[outputs]]
id = "shelf-a-display"
driver = "serial-display"
port = "{display.path}"
lines = 2
line_length = 20

[[rules]]
id = "price"
trigger = {{ event = "presence.dwell", zones = ["shelf-a"], subject = "customer" }}
[[rules.actions]]
output = "shelf-a-display"
do = "show"
line = 1
text = "{{content.zone.price:.2f|n/a}} at {{zone}}"
duration_s = 30
"""


@contextlib.asynccontextmanager
async def shop(
    tmp_path: Path, broker_port: int, gateway: str
) -> AsyncIterator[tuple[Daemon, DisplaySim]]:
    """A customer dwelling at shelf-a (a simulated ThingMagic reader), a simulated display, and
    the daemon (started by the caller)."""
    async with SimPort(tmp_path, "reader", seed=3) as reader, SimPort(tmp_path, "disp") as disp:
        antennas = [Antenna("door", i + 1, z) for i, z in enumerate(SCENARIO.zones)]
        model = TrafficModel(miss_rate=0.1, bleed_rate_hz=0.0)
        sim = ThingMagicSim(reader, SCENARIO, antennas, model=model, seed=3)
        display = DisplaySim(disp)
        tasks = [asyncio.create_task(sim.run()), asyncio.create_task(display.run())]
        config = tmp_path / "gw.toml"
        config.write_text(config_text(tmp_path, reader, disp, broker_port, gateway))
        daemon = Daemon(tmp_path, config)
        try:
            yield daemon, display
        finally:
            if daemon.proc is not None and daemon.proc.poll() is None:
                daemon.kill()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def running(daemon: Daemon) -> bool:
    assert daemon.proc is not None
    if daemon.proc.poll() is not None:
        raise AssertionError(f"the daemon exited:\n{daemon.logs()}")
    return True


async def test_a_retained_price_no_format_can_show_is_refused_and_the_rule_falls_back(
    broker: BrokerProcess, tmp_path: Path
) -> None:
    base = base_of("gw-price")
    price = [(f"{base}/content/zone/shelf-a", json.dumps({"price": int(HUGE)}).encode())]
    await publish_retained(broker, price)
    try:
        async with shop(tmp_path, broker.port, "gw-price") as (daemon, display):
            daemon.start()
            status = await status_where(
                broker, base, daemon, lambda s: rejected(s, "content", "number"), timeout=60
            )
            await until(lambda: running(daemon) and SHOWN in display.visible().values(), 60)
            await daemon.stop()
    finally:
        await publish_retained(broker, [(topic, b"") for topic, _ in price])
    assert status["counters"]["inbound_rejected"]["content"] == {"number": 1}


async def test_a_cached_price_no_format_can_show_is_refused_at_load_with_the_broker_away(
    tmp_path: Path,
) -> None:
    # The cache file as a gateway without number bounds wrote it.
    saved: dict[str, Any] = {
        "version": 1,
        "zone": {"shelf-a": {"data": {"price": int(HUGE)}, "expires": None}},
    }
    (tmp_path / "outbox.content.json").write_text(json.dumps(saved))
    async with shop(tmp_path, free_port(), "gw-cached") as (daemon, display):
        daemon.start()
        await until(lambda: running(daemon) and SHOWN in display.visible().values(), 60)
        await daemon.stop()
    assert "content cache" in daemon.logs()
