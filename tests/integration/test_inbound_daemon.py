"""Hostile messages on the inbound topics against ``silentgate run`` and a real broker: a
retained nested payload on a content topic, a command topic whose output id makes its result
topic too long for MQTT, a nested command, loose types, and an expiring command while the
kernel reports the clock unsynchronised. Each is that message's failure (a refusal, a count in
the retained status); the daemon keeps running, and keeps answering valid commands."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from demo.broker import BrokerProcess, free_port
from firmware_sim.pty import SimPort
from gateway.commands.clocksync import clock_synchronised
from gateway.tools.send import prepare, send_command
from tests.integration.inbound_rig import (
    RELAY,
    base_of,
    exchange,
    gateway_config,
    publish_once,
    publish_retained,
    rejected,
    relay_gateway,
    status_where,
)
from tests.integration.test_faults import Daemon
from tests.integration.test_metrics import metric, scrape

pytestmark = [pytest.mark.broker, pytest.mark.slow, pytest.mark.timeout(120)]

NESTED = b"[" * 1000


async def test_a_retained_nested_content_message_stops_neither_the_daemon_nor_its_restart(
    broker: BrokerProcess, tmp_path: Path
) -> None:
    base = base_of("gw-nested")
    poison = [
        (f"{base}/content/zone/entrance", NESTED),
        (f"{base}/content/zone/shelf-a", b'{"price": 1' + b"0" * 400 + b"}"),
    ]
    await publish_retained(broker, poison)
    try:
        async with SimPort(tmp_path, "door") as door:
            config = tmp_path / "gw.toml"
            config.write_text(
                gateway_config(tmp_path, broker.port, gateway="gw-nested", readers=[door])
            )
            daemon = Daemon(tmp_path, config)
            for _ in range(2):  # a start, and a restart with the retained messages still there
                daemon.start()
                try:
                    status = await status_where(
                        broker,
                        base,
                        daemon,
                        lambda s: (
                            rejected(s, "content", "too_deep") and rejected(s, "content", "number")
                        ),
                    )
                    await daemon.stop()  # exit code 0: it was running all along
                finally:
                    if daemon.proc is not None and daemon.proc.poll() is None:
                        daemon.kill()
                assert status["counters"]["inbound_rejected"]["content"] == {
                    "too_deep": 1,
                    "number": 1,
                }
    finally:
        await publish_retained(broker, [(topic, b"") for topic, _ in poison])


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_an_output_id_too_long_for_a_result_topic_costs_one_count_not_the_daemon(
    broker: BrokerProcess, tmp_path: Path, protocol: str
) -> None:
    gateway = f"gw-long-{protocol.replace('.', '')}"
    async with relay_gateway(
        tmp_path, broker, gateway=gateway, mqtt=f'protocol = "{protocol}"'
    ) as gw:
        # P/cmd/{id}/result would be 65,537 bytes: more than an MQTT topic may have.
        long_id = "x" * (65_535 - len(gw.base) - 10)
        command = {"command_id": "long-1", "action": "switch", "channel": 1, "on": True}
        await publish_once(broker, f"{gw.base}/cmd/{long_id}", json.dumps(command).encode())
        valid = prepare('{"action": "switch", "channel": 1, "on": true}', 10)
        result = await send_command(broker.url, gw.base, RELAY, valid, 10)
        if protocol == "3.1.1":
            # Delivered (3.1.1 cannot tell the broker a maximum packet size): refused as an
            # unknown output, its result counted as unanswered instead of published.
            status = await status_where(
                broker, gw.base, gw.daemon, lambda s: rejected(s, "command", "unanswered")
            )
            assert rejected(status, "command", "unknown_output") == 1
        switches = [(s.channel, s.on) for s in gw.board.switches]
    assert result is not None
    assert result["ok"] is True, result
    assert switches == [(1, True)]


async def test_nested_and_loosely_typed_commands_are_refused_with_a_result_each(
    broker: BrokerProcess, tmp_path: Path
) -> None:
    port = free_port()
    metrics = f"[metrics]\nenabled = true\nport = {port}\n"
    async with relay_gateway(tmp_path, broker, gateway="gw-strict", extra=metrics) as gw:
        nested = await exchange(broker, gw.base, RELAY, NESTED)
        yes = await exchange(
            broker,
            gw.base,
            RELAY,
            b'{"command_id": "yes-1", "action": "switch", "channel": 1, "on": "yes"}',
        )
        text = await asyncio.to_thread(scrape, port)
        switches = list(gw.board.switches)
    assert (nested["ok"], nested["command_id"]) == (False, None)
    assert "nested" in nested["error"]
    assert (yes["ok"], yes["command_id"]) == (False, "yes-1")
    assert "on: Input should be a valid boolean" in yes["error"]
    assert switches == []
    # Counted for Prometheus too, by kind and reason.
    rejected = "silentgate_inbound_rejected_total"
    assert metric(text, rejected, 'kind="command",reason="too_deep"') == 1
    assert metric(text, rejected, 'kind="command",reason="schema"') == 1


async def test_an_expiring_command_is_judged_only_by_a_synchronised_clock(
    broker: BrokerProcess, tmp_path: Path
) -> None:
    """The default config on this machine: the outcome follows what its kernel reports."""
    async with relay_gateway(tmp_path, broker, gateway="gw-clock", trust_clock=False) as gw:
        expiring = prepare('{"action": "switch", "channel": 1, "on": true}', 10)
        judged = await send_command(broker.url, gw.base, RELAY, expiring, 10)
        plain = prepare('{"action": "switch", "channel": 2, "on": true, "expires_at": null}', 10)
        unexpiring = await send_command(broker.url, gw.base, RELAY, plain, 10)
        switches = [(s.channel, s.on) for s in gw.board.switches]
    assert judged is not None
    assert unexpiring is not None
    assert unexpiring["ok"] is True, unexpiring
    if clock_synchronised():
        assert judged["ok"] is True, judged
        assert switches == [(1, True), (2, True)]
    else:
        assert judged["ok"] is False
        assert "the system clock is not synchronised" in judged["error"]
        assert switches == [(2, True)]
