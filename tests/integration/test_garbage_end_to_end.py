"""A card reader that starts sending only garbage, through ``silentgate run`` and a real broker:
its ``device.status`` events and the retained ``P/status`` say ``error`` with what came, and
``ok`` again once valid frames return; the daemon runs on throughout."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any, Final

import pytest
from harness import start_daemon, stop_daemon
from test_devices_end_to_end import BASE, config_text, listening, running, status

from demo.broker import BrokerProcess
from firmware_sim.em4100 import Em4100Sim
from firmware_sim.faults import Faults
from firmware_sim.pty import SimPort
from firmware_sim.scenario import Scenario, Subject, Visit
from gateway.tools.tail import subscribe

pytestmark = [pytest.mark.broker, pytest.mark.slow, pytest.mark.timeout(90)]

CARD: Final = "0D00319CD0"
ONLY_GARBAGE: Final = Faults(garbage_rate=1.0, corrupt_rate=1.0)  # noise, then a broken frame
DETAIL: Final = re.compile(r"no valid frame in 1 s \((\d+) bytes of garbage\)")
WAIT_S: Final = 30.0


def reader_text(port: SimPort) -> str:
    return f"""
[[readers]]
id = "cards"
driver = "em4100"
port = "{port.path}"
zone = "counter"
garbage_error_s = 1.0
"""


def card_always_there() -> Scenario:
    return Scenario(
        zones=("counter",),
        subjects=(Subject(CARD, "customer"),),
        visits=(Visit(CARD, "counter", 0.0, 1000.0),),
        duration=1000.0,
    )


async def reported(statuses: list[dict[str, Any]], state: str, after: int = 0) -> int:
    """Wait for a ``P/status`` message (past the first ``after``) with the reader in ``state``;
    return how many messages had come by then."""
    async with asyncio.timeout(WAIT_S):
        while not any(s["devices"].get("cards") == state for s in statuses[after:]):
            await asyncio.sleep(0.05)
    return len(statuses)


async def test_a_reader_sending_only_garbage_is_in_error_then_ok_again(
    broker: BrokerProcess, tmp_path: Path
) -> None:
    statuses: list[dict[str, Any]] = []
    ready = asyncio.Event()
    on_status = subscribe(
        broker.url, f"{BASE}/status", lambda _kind, obj: statuses.append(obj), ready
    )
    async with (
        SimPort(tmp_path, "cards", seed=3) as port,
        listening(broker) as events,
        running(on_status),
    ):
        await asyncio.wait_for(ready.wait(), WAIT_S)
        sim = Em4100Sim(port, card_always_there(), "counter", seed=3, clock=lambda: 1.0)
        config = tmp_path / "gw.toml"
        config.write_text(config_text(tmp_path, broker.url, reader_text(port)))
        async with running(sim.run()):
            daemon = start_daemon(config)
            try:
                ok = await events.until(status("cards", "ok"))
                sim.faults = ONLY_GARBAGE
                error = await events.until(status("cards", "error", after=ok["seq"]))
                seen = await reported(statuses, "error")
                sim.faults = Faults()
                back = await events.until(status("cards", "ok", after=error["seq"]))
                await reported(statuses, "ok", after=seen)
                alive = daemon.poll() is None
            finally:
                log = await stop_daemon(daemon)
    assert alive, log
    m = DETAIL.fullmatch(error["detail"])
    assert m is not None, error
    assert int(m.group(1)) > 0
    assert back["detail"] == "listening"
    assert sim.mangler.counts.garbage_bytes > 0
    assert "Traceback" not in log
