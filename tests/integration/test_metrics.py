"""The daemon's own figures: in the retained status, and on the Prometheus endpoint."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from harness import (  # the same pty reader and daemon harness
    HeldClock,
    config_text,
    start_daemon,
    stop_daemon,
    wait_for,
)

from demo.broker import BrokerProcess, free_port
from firmware_sim.pty import SimPort
from gateway.tools.tail import subscribe

pytestmark = [pytest.mark.broker, pytest.mark.slow, pytest.mark.timeout(90)]


def scrape(port: int) -> str:
    """The metrics text, or "" while the endpoint is not listening yet."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            return str(response.read().decode())
    except urllib.error.URLError:
        return ""


def metric(text: str, name: str, label: str = "") -> float:
    """The sum of a metric's samples whose labels include ``label`` (e.g. 'device="door"')."""
    lines = [
        line
        for line in text.splitlines()
        if line.startswith((name + "{", name + " ")) and label in line
    ]
    assert lines, (name, label, text)
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines)


async def test_status_counters_and_prometheus_agree_on_reads(
    broker: BrokerProcess, reader: tuple[SimPort, HeldClock], tmp_path: Path
) -> None:
    port, clock = reader
    metrics_port = free_port()
    config = tmp_path / "gw.toml"
    config.write_text(
        config_text(tmp_path, str(port.path), broker.url)
        + f"[metrics]\nenabled = true\nport = {metrics_port}\n"
    )
    statuses: list[dict[str, Any]] = []
    ready = asyncio.Event()
    listener = asyncio.create_task(
        subscribe(broker.url, "silentcommerce/v1/store-042/gw-e2e/status",
                  lambda kind, obj: statuses.append(obj), ready)
    )  # fmt: skip
    await ready.wait()
    daemon = start_daemon(config)
    try:
        await wait_for(statuses, lambda s: s.get("devices", {}).get("door") == "ok", timeout=30)
        clock.start()
        text = ""
        async with asyncio.timeout(30):
            # Until the customer has been read at the entrance (antenna 1): the item on shelf-b
            # alone can pass 20 reads before the customer arrives.
            while 'antenna="1",device="door"' not in text or (
                metric(text, "silentgate_reads_total", 'device="door"') <= 20
            ):
                await asyncio.sleep(0.5)
                text = await asyncio.to_thread(scrape, metrics_port)
        with pytest.raises(urllib.error.HTTPError, match="404"):
            await asyncio.to_thread(urllib.request.urlopen, f"http://127.0.0.1:{metrics_port}/x")
    finally:
        await stop_daemon(daemon)
        listener.cancel()
    reads = metric(text, "silentgate_reads_total", 'device="door"')
    assert reads > 20
    assert 'antenna="1"' in text  # the customer's entrance visit
    assert metric(text, "silentgate_device_up", 'device="door"') == 1.0
    assert metric(text, "silentgate_events_total") >= 1
    assert "silentgate_publish_seconds_bucket" in text
    # The retained status carries the same counters (refreshed every 30 s, or on a change).
    counters = next(s for s in reversed(statuses) if "counters" in s)["counters"]
    assert isinstance(counters["reads"]["door"], int)
    assert "publish_ms_p99" in counters
