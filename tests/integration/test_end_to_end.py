"""The whole path: a simulated ThingMagic reader on a pty -> ``silentgate run`` as a separate
process -> a real broker -> a subscriber, compared with the scenario's ground truth."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from firmware_sim.epc import Sgtin, customer_epc
from firmware_sim.pty import SimPort
from firmware_sim.scenario import Scenario, Subject, Visit
from firmware_sim.thingmagic import ThingMagicSim
from firmware_sim.traffic import Antenna, TrafficModel
from gateway.demo.broker import BrokerProcess
from gateway.tail import subscribe

pytestmark = [pytest.mark.broker, pytest.mark.slow, pytest.mark.timeout(90)]

SECRET = "e2e-secret"
CUSTOMER = customer_epc("C0FFEE", 7)
ITEM = Sgtin(1, "0614141", "812345", 42).to_hex()
# A customer walks in, lingers at shelf-a past its dwell time, and leaves; an item sits on
# shelf-b throughout. Times are seconds into the scenario.
SCENARIO = Scenario(
    zones=("entrance", "shelf-a", "shelf-b"),
    subjects=(Subject(CUSTOMER, "customer"), Subject(ITEM, "item")),
    visits=(
        Visit(CUSTOMER, "entrance", 1.0, 3.0),
        Visit(CUSTOMER, "shelf-a", 3.0, 7.5),
        Visit(ITEM, "shelf-b", 0.0, 1000.0),
    ),
    duration=1000.0,
)


def config_text(tmp: Path, port: str, broker: str) -> str:
    (tmp / "secret").write_text(SECRET + "\n")
    return f"""
[site]
store = "store-042"
gateway = "gw-e2e"
[mqtt]
url = "{broker}"
[storage]
path = "{tmp / "outbox.db"}"
[privacy]
secret_file = "{tmp / "secret"}"
[tags]
customer_prefixes = ["C0FFEE"]
[[readers]]
id = "door"
driver = "thingmagic"
port = "{port}"
antennas = {{ 1 = "entrance", 2 = "shelf-a", 3 = "shelf-b" }}
[[zones]]
id = "shelf-a"
dwell_s = 2.0
"""


class HeldClock:
    """Scenario time that stands before the first visit until ``start()``: the scenario begins
    once the daemon is up, however long its start takes on a loaded machine."""

    def __init__(self) -> None:
        self.origin: float | None = None

    def __call__(self) -> float:
        return -1.0 if self.origin is None else time.monotonic() - self.origin

    def start(self) -> None:
        self.origin = time.monotonic()


@pytest.fixture
async def reader(tmp_path: Path) -> AsyncIterator[tuple[SimPort, HeldClock]]:
    port = SimPort(tmp_path, "door", seed=5)
    port.open()
    antennas = [Antenna("door", i + 1, z) for i, z in enumerate(SCENARIO.zones)]
    model = TrafficModel(miss_rate=0.2, bleed_rate_hz=0.0)
    clock = HeldClock()
    sim = ThingMagicSim(port, SCENARIO, antennas, model=model, seed=5, clock=clock)
    task = asyncio.create_task(sim.run())
    yield port, clock
    task.cancel()
    port.close()


def start_daemon(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "gateway", "run", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def stop_daemon(proc: subprocess.Popen[bytes]) -> str:
    proc.send_signal(signal.SIGTERM)
    rc = await asyncio.to_thread(proc.wait, 20)
    assert proc.stderr is not None
    with proc.stderr:
        log = proc.stderr.read().decode()
    assert rc == 0, log
    return log


async def wait_for(events: list[dict[str, Any]], pred: Any, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while not any(pred(e) for e in events):
            await asyncio.sleep(0.05)


async def test_reads_become_presence_events_and_seq_survives_a_restart(
    broker: BrokerProcess, reader: tuple[SimPort, HeldClock], tmp_path: Path
) -> None:
    port, clock = reader
    config = tmp_path / "gw.toml"
    config.write_text(config_text(tmp_path, str(port.path), broker.url))
    events: list[dict[str, Any]] = []
    ready = asyncio.Event()
    listener = asyncio.create_task(
        subscribe(
            broker.url,
            "silentcommerce/v1/store-042/gw-e2e/event/#",
            lambda kind, obj: events.append(obj),
            ready,
        )
    )
    await ready.wait()
    customer = hmac.new(SECRET.encode(), CUSTOMER.encode(), hashlib.sha256).hexdigest()

    def is_(kind: str, zone: str, subject: str) -> Any:
        return lambda e: (e["type"], e.get("zone"), e.get("subject", {}).get("id")) == (
            kind, zone, subject
        )  # fmt: skip

    daemon = start_daemon(config)
    try:
        await wait_for(events, lambda e: e.get("state") == "ok", timeout=30)
        clock.start()
        await wait_for(events, is_("presence.exit", "shelf-a", customer), timeout=30)
    finally:
        log = await stop_daemon(daemon)
    seen = {(e["type"], e.get("zone"), e.get("subject", {}).get("id")) for e in events}
    for expected in [
        ("presence.enter", "entrance", customer),
        ("presence.exit", "entrance", customer),
        ("presence.enter", "shelf-a", customer),
        ("presence.dwell", "shelf-a", customer),
        ("presence.exit", "shelf-a", customer),
        ("presence.enter", "shelf-b", ITEM),
    ]:
        assert expected in seen, (expected, log)
    # The raw card number never leaves the device in the default privacy mode.
    assert all(CUSTOMER not in str(e) for e in events)
    item = next(e for e in events if e.get("subject", {}).get("id") == ITEM)
    assert item["subject"]["gtin"] == "80614141123458"
    assert item["subject"]["serial"] == "42"
    exit_a = next(e for e in events if is_("presence.exit", "shelf-a", customer)(e))
    assert 3.0 <= exit_a["dwell_s"] <= 5.5

    # A restart continues the sequence: no gap, no reuse.
    last_seq = max(e["seq"] for e in events)
    daemon = start_daemon(config)
    try:
        await wait_for(events, lambda e: e["seq"] > last_seq + 1, timeout=30)
    finally:
        await stop_daemon(daemon)
    listener.cancel()
    seqs = sorted({e["seq"] for e in events})
    assert seqs == list(range(1, seqs[-1] + 1))
    assert len({e["id"] for e in events}) == len({e["seq"] for e in events})


async def test_a_killed_daemon_is_marked_offline_by_its_last_will(tmp_path: Path) -> None:
    """kill -9 (or a power cut) sends no DISCONNECT: the broker publishes the will."""
    statuses: list[dict[str, Any]] = []
    with BrokerProcess() as fresh:  # its own broker: no retained status from other tests
        config = tmp_path / "gw.toml"
        config.write_text(config_text(tmp_path, str(tmp_path / "no-such-port"), fresh.url))
        ready = asyncio.Event()
        listener = asyncio.create_task(
            subscribe(
                fresh.url,
                "silentcommerce/v1/store-042/gw-e2e/status",
                lambda kind, obj: statuses.append(obj),
                ready,
            )
        )
        await ready.wait()
        daemon = start_daemon(config)
        try:
            await wait_for(statuses, lambda s: s["state"] == "online", timeout=30)
        finally:
            daemon.kill()
            daemon.wait()
            assert daemon.stderr is not None
            daemon.stderr.close()
        await wait_for(statuses, lambda s: s["state"] == "offline", timeout=15)
        listener.cancel()
    online = next(s for s in statuses if s["state"] == "online")
    assert online["devices"] == {"door": "down"} or online["devices"] == {"door": "starting"}
