"""The whole path: a simulated ThingMagic reader on a pty -> ``silentgate run`` as a separate
process -> a real broker -> a subscriber, compared with the scenario's ground truth."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from pathlib import Path
from typing import Any

import pytest
from harness import (
    CUSTOMER,
    ITEM,
    SECRET,
    HeldClock,
    config_text,
    start_daemon,
    stop_daemon,
    wait_for,
)

from demo.broker import BrokerProcess
from firmware_sim.pty import SimPort
from gateway.tools.tail import subscribe

pytestmark = [pytest.mark.broker, pytest.mark.slow, pytest.mark.timeout(90)]


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
    assert CUSTOMER not in log  # nor its journal
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
