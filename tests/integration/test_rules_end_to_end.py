"""A rule with no broker: a simulated ThingMagic reader and a simulated display on ptys, and
``silentgate run`` as a separate process whose broker port is closed. The customer dwells, the
display shows the rule's text at once; when a broker appears on that port later, the
``action.executed`` event about it is delivered, naming the rule and the dwell that fired it, and
content the central server then pushes is cached on disk."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from demo.broker import BrokerProcess, free_port
from firmware_sim.display import DisplaySim
from firmware_sim.epc import customer_epc
from firmware_sim.pty import SimPort
from firmware_sim.scenario import Scenario, Subject, Visit
from firmware_sim.thingmagic import ThingMagicSim
from firmware_sim.traffic import Antenna, TrafficModel
from gateway.config.root import Config
from gateway.tools.tail import subscribe

pytestmark = [
    pytest.mark.broker,
    pytest.mark.slow,
    pytest.mark.timeout(120),
    pytest.mark.skipif(
        "RuleConfig" not in str(Config.model_fields["rules"].annotation),
        reason="the daemon is not wired for [[rules]] yet",
    ),
]

SECRET = "rules-secret-of-16-bytes"
BASE = "silentcommerce/v1/store-042/gw-rules"
TITLE = '{"title": "Fresh bread"}'
CUSTOMER = customer_epc("C0FFEE", 11)
# The customer stands at shelf-a long enough for its 1 s dwell, well after the daemon is up.
SCENARIO = Scenario(
    zones=("entrance", "shelf-a"),
    subjects=(Subject(CUSTOMER, "customer"),),
    visits=(Visit(CUSTOMER, "shelf-a", 2.0, 600.0),),
    duration=600.0,
)


def config_text(tmp: Path, reader: SimPort, display: SimPort, port: int) -> str:
    (tmp / "secret").write_text(SECRET + "\n")
    return f"""
[site]
store = "store-042"
gateway = "gw-rules"
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
id = "dwell-hello"
trigger = {{ event = "presence.dwell", zones = ["shelf-a"], subject = "customer" }}
[[rules.actions]]
output = "shelf-a-display"
do = "show"
line = 1
text = "{{content.zone.title|Hello}} at {{zone}}"
duration_s = 30
"""


@contextlib.asynccontextmanager
async def sims(tmp_path: Path) -> AsyncIterator[tuple[SimPort, SimPort, DisplaySim]]:
    async with SimPort(tmp_path, "reader", seed=3) as reader, SimPort(tmp_path, "disp") as disp:
        antennas = [Antenna("door", i + 1, z) for i, z in enumerate(SCENARIO.zones)]
        model = TrafficModel(miss_rate=0.1, bleed_rate_hz=0.0)
        sim = ThingMagicSim(reader, SCENARIO, antennas, model=model, seed=3)
        display = DisplaySim(disp)
        tasks = [asyncio.create_task(sim.run()), asyncio.create_task(display.run())]
        try:
            yield reader, disp, display
        finally:
            for task in tasks:
                task.cancel()


def cached(tmp: Path) -> str:
    try:
        return (tmp / "outbox.content.json").read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""


async def until(condition: Any, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


async def test_a_rule_fires_offline_and_its_event_is_delivered_once_a_broker_appears(
    tmp_path: Path,
) -> None:
    port = free_port()  # nothing listens here until the broker is started below
    async with sims(tmp_path) as (reader, disp, display):
        config = tmp_path / "gw.toml"
        config.write_text(config_text(tmp_path, reader, disp, port))
        daemon = subprocess.Popen(
            [sys.executable, "-m", "gateway", "run", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            await until(lambda: "Hello at shelf-a" in display.visible().values(), timeout=60)
            events: list[dict[str, Any]] = []
            with BrokerProcess(port=port) as broker:
                ready = asyncio.Event()
                topic = f"{BASE}/event/#"
                listener = asyncio.create_task(
                    subscribe(broker.url, topic, lambda kind, obj: events.append(obj), ready)
                )
                await ready.wait()
                try:
                    await until(lambda: any(e["type"] == "action.executed" for e in events), 60)
                    # Content pushed now is cached on disk for the next time the broker is away.
                    async with aiomqtt.Client("127.0.0.1", port) as central:
                        await central.publish(f"{BASE}/content/zone/shelf-a", TITLE, 1, True)
                    await until(lambda: "Fresh bread" in cached(tmp_path), 30)
                finally:
                    listener.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await listener
        finally:
            daemon.send_signal(signal.SIGTERM)
            rc = await asyncio.to_thread(daemon.wait, 20)
            assert daemon.stderr is not None
            with daemon.stderr:
                log = daemon.stderr.read().decode()
    assert rc == 0, log
    executed = next(e for e in events if e["type"] == "action.executed")
    trigger = next(e for e in events if e["id"] == executed["trigger"])
    customer = hmac.new(SECRET.encode(), CUSTOMER.encode(), hashlib.sha256).hexdigest()
    assert trigger["type"] == "presence.dwell"
    assert (trigger["zone"], trigger["subject"]["id"]) == ("shelf-a", customer)
    assert executed["rule"] == "dwell-hello"
    assert executed["output"] == "shelf-a-display"
    assert (executed["ok"], executed["action"]) == (True, "show")
    assert executed["subject"]["id"] == customer
    assert executed["seq"] > trigger["seq"]
    print(f"rule decision -> display ACK: {executed['latency_ms']} ms")
