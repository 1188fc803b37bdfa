"""The command router: every refusal reason, exactly one execution per command_id (also across a
reopen of the database), failures and timeouts of the output reported in the result."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.commands import AnyCommand, OutputError, RelaySwitch
from gateway.commands.channel import CommandChannel
from gateway.commands.ledger import CommandLedger
from gateway.commands.models import MAX_PAYLOAD_BYTES, OutputKind
from gateway.commands.router import CommandRouter
from gateway.events.model import format_ts
from gateway.outbox import Outbox
from gateway.tools.send import prepare
from tests.waiting import background, until

NOW = 1_795_000_000.0  # 2026-11-18


class Recorder:
    """An output that records what it was asked to do (the outputs package is not needed here)."""

    def __init__(self, kind: OutputKind = "relay", *, fail: str | None = None) -> None:
        self.kind: OutputKind = kind
        self.done: list[AnyCommand] = []
        self.fail = fail
        self.delay = 0.0

    async def execute(self, command: AnyCommand) -> None:
        await asyncio.sleep(self.delay)
        if self.fail:
            raise OutputError(self.fail)
        self.done.append(command)


def switch(command_id: str = "c-1", **extra: object) -> bytes:
    body = {"command_id": command_id, "action": "switch", "channel": 2, "on": True, **extra}
    return json.dumps(body).encode()


@pytest.fixture
def outbox(tmp_path: Path) -> Outbox:
    return Outbox.open(tmp_path / "o.db")


def router_for(outbox: Outbox, relay: Recorder, **kw: float) -> CommandRouter:
    """A router whose wall clock reads NOW and counts as synchronised (NTP), so expires_at is
    judged by it; test_inbound_limits.py covers a clock that is not."""
    return CommandRouter(
        CommandLedger(outbox),
        {"relay-1": relay},
        clock=lambda: NOW,
        synchronised=lambda: True,
        **kw,
    )


async def test_a_valid_command_runs_once_and_its_replay_is_refused(outbox: Outbox) -> None:
    relay = Recorder()
    router = router_for(outbox, relay)
    first = await router.handle("relay-1", switch())
    again = await router.handle("relay-1", switch())
    assert (first.ok, first.error, first.command_id) == (True, None, "c-1")
    assert relay.done == [RelaySwitch(command_id="c-1", action="switch", channel=2, on=True)]
    assert not again.ok
    assert again.error is not None
    assert "replayed" in again.error
    assert "(ok)" in again.error
    assert json.loads(first.to_json())["ts"].endswith("Z")


async def test_replay_protection_survives_a_reopen(tmp_path: Path) -> None:
    relay = Recorder()
    outbox = Outbox.open(tmp_path / "o.db")
    await router_for(outbox, relay).handle("relay-1", switch("c-9"))
    outbox.close()
    reopened = Outbox.open(tmp_path / "o.db")
    result = await router_for(reopened, relay).handle("relay-1", switch("c-9"))
    assert not result.ok
    assert len(relay.done) == 1


@pytest.mark.parametrize(
    ("output", "payload", "reason", "echoed"),
    [
        ("relay-1", b"{not json", "malformed JSON", None),
        ("relay-1", b"[1, 2]", "JSON object", None),
        ("relay-1", b'{"command_id": "c-2", "action": "switch"}', "valid relay", "c-2"),
        ("relay-1", switch("c-3", colour="red"), "valid relay", "c-3"),
        ("relay-1", switch("c-4", channel=99), "channel", "c-4"),
        ("relay-1", switch("bad id with spaces"), "command_id", None),
        ("relay-1", switch("c-5", expires_at="2026-11-18T00:00:00"), "expires_at", "c-5"),
        ("relay-1", switch("c-6", expires_at="2020-01-01T00:00:00Z"), "expired", "c-6"),
        ("relay-1", switch("c-7", expires_at="2030-01-01T00:00:00Z"), "ahead", "c-7"),
        ("door-9", switch("c-8"), "unknown output", "c-8"),
        ("relay-1", b" " * (MAX_PAYLOAD_BYTES + 1), "exceeds", None),
    ],
)
async def test_refused_commands_are_never_executed(
    outbox: Outbox, output: str, payload: bytes, reason: str, echoed: str | None
) -> None:
    relay = Recorder()
    result = await router_for(outbox, relay).handle(output, payload)
    assert not result.ok
    assert result.error is not None
    assert reason in result.error
    assert result.command_id == echoed
    assert result.output_id == output
    assert relay.done == []


async def test_an_expired_command_stays_refused_when_resent_and_costs_no_storage(
    outbox: Outbox,
) -> None:
    relay = Recorder()
    ledger = CommandLedger(outbox)
    router = CommandRouter(ledger, {"relay-1": relay}, clock=lambda: NOW, synchronised=lambda: True)
    late = switch("c-late", expires_at="2026-01-01T00:00:00Z")
    for _ in range(2):
        result = await router.handle("relay-1", late)
        assert result.error is not None
        assert "expired" in result.error
    assert relay.done == []
    assert await ledger.count() == 0  # a flood of expired commands cannot push real ids out


async def test_a_replay_is_refused_from_memory_and_from_the_ledger_alike(outbox: Outbox) -> None:
    relay = Recorder()
    await router_for(outbox, relay).handle("relay-1", switch("c-r"))
    fresh = router_for(outbox, relay)  # a restart: nothing in memory, the ledger remembers
    from_ledger = await fresh.handle("relay-1", switch("c-r"))
    from_memory = await fresh.handle("relay-1", switch("c-r"))
    assert (
        from_ledger.error
        == from_memory.error
        == ("replayed: this command_id was already seen (ok)")
    )
    assert len(relay.done) == 1


async def test_output_errors_and_timeouts_become_failed_results(outbox: Outbox) -> None:
    broken = Recorder(fail="relay board not answering")
    result = await router_for(outbox, broken).handle("relay-1", switch("c-a"))
    assert (result.ok, result.error) == (False, "relay board not answering")
    slow = Recorder()
    slow.delay = 1.0
    result = await router_for(outbox, slow, timeout_s=0.05).handle("relay-1", switch("c-b"))
    assert result.error is not None
    assert "timed out" in result.error
    assert slow.done == []


async def test_a_command_for_another_kind_is_refused(outbox: Outbox) -> None:
    display = Recorder("serial-display")
    router = CommandRouter(CommandLedger(outbox), {"shelf-a": display}, clock=lambda: NOW)
    refused = await router.handle("shelf-a", switch("c-x"))
    assert not refused.ok
    show = {"command_id": "c-y", "action": "show", "line": 1, "text": "Hello"}
    assert (await router.handle("shelf-a", json.dumps(show).encode())).ok
    too_long = {**show, "command_id": "c-z", "text": "x" * 41}
    assert not (await router.handle("shelf-a", json.dumps(too_long).encode())).ok
    assert [c.command_id for c in display.done] == ["c-y"]


def test_arbitrary_bytes_never_actuate(tmp_path_factory: pytest.TempPathFactory) -> None:
    outbox = Outbox.open(tmp_path_factory.mktemp("fuzz") / "o.db", synchronous="normal")
    relay = Recorder()
    router = router_for(outbox, relay)

    @given(payload=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
    def check(payload: bytes) -> None:
        result = asyncio.run(router.handle("relay-1", payload))
        assert not result.ok
        assert relay.done == []

    check()
    outbox.close()


def test_send_fills_in_command_id_and_expiry_but_keeps_given_ones() -> None:
    filled = prepare('{"action": "clear"}', 15, now=NOW)
    assert filled["expires_at"] == format_ts(NOW + 15)
    assert len(filled["command_id"]) == 36
    given = prepare('{"action": "clear", "command_id": "c-1", "expires_at": "x"}', 15, now=NOW)
    assert (given["command_id"], given["expires_at"]) == ("c-1", "x")


@pytest.mark.parametrize("text", ["[1]", "{nope", '"clear"'])
def test_send_refuses_what_is_not_a_json_object(text: str) -> None:
    with pytest.raises(ValueError, match="JSON"):
        prepare(text, 15)


async def test_the_channel_takes_only_p_cmd_output_topics(outbox: Outbox) -> None:
    relay = Recorder()
    counted: list[int] = []
    channel = CommandChannel(
        router_for(outbox, relay), "p/s/g", lambda ch: counted.append(ch.router.executed)
    )
    assert channel.topic_filter == "p/s/g/cmd/+"
    async with background(channel.run()):
        for topic in ["p/s/g/cmd/relay-1/result", "p/s/g/status", "q/cmd/relay-1"]:
            channel.receive(topic, switch(f"c-{len(topic)}"))
        channel.receive("p/s/g/cmd/relay-1", switch("c-ok"))
        await until(lambda: counted == [1])
        # P/cmd/+ matches an empty level too: no such output, and the refusal says so.
        channel.receive("p/s/g/cmd/", switch("c-empty"))
        await until(lambda: counted == [1, 1])
    assert [c.command_id for c in relay.done] == ["c-ok"]
    assert channel.router.refused_by == {"unknown_output": 1}
