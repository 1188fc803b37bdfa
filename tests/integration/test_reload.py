"""SIGHUP: a good config is taken without losing an event; a bad one is refused and logged."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import pytest
from harness import HeldClock, config_text, start_daemon, stop_daemon, wait_for

from demo.broker import BrokerProcess
from firmware_sim.pty import SimPort
from gateway.tools.tail import subscribe

pytestmark = [pytest.mark.broker, pytest.mark.slow, pytest.mark.timeout(90)]


async def test_reload_keeps_seq_and_a_bad_config_is_refused(
    broker: BrokerProcess, reader: tuple[SimPort, HeldClock], tmp_path: Path
) -> None:
    port, clock = reader
    config = tmp_path / "gw.toml"
    good = config_text(tmp_path, str(port.path), broker.url)
    config.write_text(good)
    events: list[dict[str, Any]] = []
    ready = asyncio.Event()
    listener = asyncio.create_task(
        subscribe(broker.url, "silentcommerce/v1/store-042/gw-e2e/event/#",
                  lambda kind, obj: events.append(obj), ready)
    )  # fmt: skip
    await ready.wait()
    daemon = start_daemon(config)
    try:
        await wait_for(events, lambda e: e.get("state") == "ok", timeout=30)
        clock.start()
        await wait_for(events, lambda e: e["type"] == "presence.enter", timeout=20)

        config.write_text(good.replace('store = "store-042"', 'store = "Not A Store"'))
        daemon.send_signal(signal.SIGHUP)
        await asyncio.sleep(1.0)
        assert daemon.poll() is None  # still running, on the old config

        config.write_text(good.replace("dwell_s = 2.0", "dwell_s = 3.0"))
        before = len(events)
        daemon.send_signal(signal.SIGHUP)
        # The new daemon reports its reader again.
        async with asyncio.timeout(30):
            while not any(e["type"] == "device.status" for e in events[before:]):
                await asyncio.sleep(0.05)
    finally:
        log = await stop_daemon(daemon)
        listener.cancel()
    assert "reload refused" in log
    assert "'Not A Store' must match" in log
    assert "reloading" in log
    seqs = sorted(e["seq"] for e in events)
    assert seqs == list(range(1, seqs[-1] + 1))  # nothing lost across the reload
