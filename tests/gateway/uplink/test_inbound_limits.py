"""What the MQTT inbound edge does with hostile input, handler by handler: nesting, huge
numbers, loose types, control and bidirectional characters, expiry without a synchronised clock,
and templates that meet pushed values they cannot format. Each case is one message's failure (a
refusal, a counted rejection, a fallback), never an exception out of the handler."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from gateway.commands import AnyCommand, DisplayShow, RelaySwitch
from gateway.commands.ledger import CommandLedger
from gateway.commands.models import OutputKind
from gateway.commands.router import CommandRouter
from gateway.config.templates import Template
from gateway.outbox import Outbox
from gateway.rules.content import ContentStore
from gateway.runtime.ratelog import Throttle
from gateway.wire.tokenbucket import TokenBucket

NOW = 1_795_000_000.0  # 2026-11-18
NESTED = b"[" * 1000 + b"]" * 1000
HUGE_INT = b"1" + b"0" * 400


class Recorder:
    def __init__(self, kind: OutputKind = "relay") -> None:
        self.kind: OutputKind = kind
        self.done: list[AnyCommand] = []

    async def execute(self, command: AnyCommand) -> None:
        self.done.append(command)


@pytest.fixture
def outbox(tmp_path: Path) -> Outbox:
    return Outbox.open(tmp_path / "o.db")


def router(outbox: Outbox, executors: dict[str, Recorder], *, synced: bool) -> CommandRouter:
    """A router whose clock reads NOW and whose clock-sync check answers ``synced``."""
    return CommandRouter(
        CommandLedger(outbox),
        executors,
        clock=lambda: NOW,
        synchronised=lambda: synced,
    )


def command(**fields: object) -> bytes:
    return json.dumps({"command_id": "c-1", **fields}).encode()


async def test_a_deeply_nested_command_is_refused_with_a_result(outbox: Outbox) -> None:
    relay = Recorder()
    result = await router(outbox, {"relay-1": relay}, synced=True).handle("relay-1", NESTED)
    assert (result.ok, result.command_id) == (False, None)
    assert result.error is not None
    assert "nested" in result.error
    assert relay.done == []


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"action": "switch", "channel": 1, "on": "yes"}, "on"),
        ({"action": "switch", "channel": 1, "on": 1}, "on"),
        ({"action": "switch", "channel": "1", "on": True}, "channel"),
        ({"action": "switch", "channel": 1.0, "on": True}, "channel"),
        ({"action": "switch", "channel": 1, "on": True, "duration_s": "5"}, "duration_s"),
    ],
)
async def test_a_command_is_never_coerced_into_a_switch(
    outbox: Outbox, fields: dict[str, object], why: str
) -> None:
    relay = Recorder()
    result = await router(outbox, {"relay-1": relay}, synced=True).handle(
        "relay-1", command(**fields)
    )
    assert not result.ok
    assert result.error is not None
    assert why in result.error
    assert relay.done == []


async def test_an_int_for_a_float_field_and_an_iso_expiry_are_still_valid(outbox: Outbox) -> None:
    relay = Recorder()
    payload = command(
        action="switch", channel=1, on=True, duration_s=5, expires_at="2026-11-19T00:00:00Z"
    )
    result = await router(outbox, {"relay-1": relay}, synced=True).handle("relay-1", payload)
    assert result.ok, result.error
    assert relay.done == [
        RelaySwitch.model_validate_json(payload)  # duration_s 5.0, expires_at a datetime
    ]


@pytest.mark.parametrize("number", [HUGE_INT, b"1e400", b"-1e400", b"NaN", b"Infinity", b"1" * 30])
async def test_numbers_out_of_range_are_refused_before_validation(
    outbox: Outbox, number: bytes
) -> None:
    relay = Recorder()
    payload = b'{"command_id": "c-1", "action": "switch", "channel": 1, "on": true, '
    payload += b'"duration_s": ' + number + b"}"
    result = await router(outbox, {"relay-1": relay}, synced=True).handle("relay-1", payload)
    assert not result.ok
    assert result.error is not None
    assert "number" in result.error
    assert relay.done == []


@pytest.mark.parametrize(
    "text",
    ["\x1b[2J", "a\x00b", "line\nbreak", "del\x7f", "c1\x85", "\u202eevil", "x\u2066y", "\u200f"],
)
async def test_display_text_with_control_or_bidi_characters_is_refused(
    outbox: Outbox, text: str
) -> None:
    display, labels = Recorder("serial-display"), Recorder("openepaperlink")
    r = router(outbox, {"disp": display, "tags": labels}, synced=True)
    show = await r.handle("disp", command(action="show", line=1, text=text))
    label = await r.handle(
        "tags", command(command_id="c-2", action="show", mac="0000021F8A3C", lines=["ok", text])
    )
    for result in (show, label):
        assert not result.ok
        assert result.error is not None
        assert "character" in result.error
    assert display.done == labels.done == []


async def test_plain_display_text_in_any_script_is_accepted(outbox: Outbox) -> None:
    display = Recorder("serial-display")
    text = "Käse -20 % שלום ١٢"
    result = await router(outbox, {"disp": display}, synced=True).handle(
        "disp", command(action="show", line=1, text=text)
    )
    assert result.ok, result.error
    assert display.done == [DisplayShow(command_id="c-1", action="show", line=1, text=text)]


async def test_an_expiring_command_is_refused_while_the_clock_is_not_synchronised(
    outbox: Outbox,
) -> None:
    relay = Recorder()
    r = router(outbox, {"relay-1": relay}, synced=False)
    # Expired 10 minutes ago by a wall clock that may be an hour behind: cannot be judged.
    expiring = command(action="switch", channel=1, on=True, expires_at="2026-11-18T10:56:40Z")
    refused = await r.handle("relay-1", expiring)
    plain = await r.handle(
        "relay-1", command(command_id="c-2", action="switch", channel=1, on=True)
    )
    assert not refused.ok
    assert refused.error is not None
    assert "not synchronised" in refused.error
    assert plain.ok, plain.error
    assert [c.command_id for c in relay.done] == ["c-2"]
    # Not remembered as seen: once the clock is synchronised the same command is judged.
    later = await router(outbox, {"relay-1": relay}, synced=True).handle("relay-1", expiring)
    assert later.error is not None
    assert "expired" in later.error


async def test_an_overlong_unknown_output_id_is_refused_without_echoing_it_whole(
    outbox: Outbox,
) -> None:
    relay = Recorder()
    output_id = "x" * 65_000
    result = await router(outbox, {"relay-1": relay}, synced=True).handle(
        output_id, command(action="switch", channel=1, on=True)
    )
    assert not result.ok
    assert result.error is not None
    assert "unknown output" in result.error
    assert len(result.to_json()) < 1000
    assert relay.done == []


def content(tmp_path: Path) -> ContentStore:
    return ContentStore.open(tmp_path / "outbox.content.json", wall=lambda: NOW)


@pytest.mark.parametrize(
    "payload",
    [
        NESTED,
        b'{"title": ' + b"[" * 100_000,
        b'{"price": ' + HUGE_INT + b"}",
        b'{"price": 1e400}',
        b'{"price": NaN}',
        b'{"price": -Infinity}',
    ],
)
def test_content_out_of_bounds_is_refused_and_counted(tmp_path: Path, payload: bytes) -> None:
    store = content(tmp_path)
    store.apply("zone/shelf-a", b'{"title": "good"}')
    assert not store.apply("zone/shelf-a", payload)
    assert store.zone("shelf-a") == {"title": "good"}
    assert store.refused == 1


@pytest.mark.parametrize("value", [10**400, float("inf"), float("nan"), -(10**30), 1e300])
def test_a_template_renders_any_value_without_raising(value: float) -> None:
    template = Template.parse("Price {content.zone.price:.2f|n/a} / {content.zone.price}")
    text = template.render(lambda path: value)
    assert text is not None
    assert text.startswith("Price ")


def test_a_value_that_cannot_be_formatted_falls_back_or_shows_nothing() -> None:
    with_fallback = Template.parse("{content.zone.price:.2f|n/a}")
    without = Template.parse("{content.zone.price:.2f}")
    assert with_fallback.render(lambda path: 10**400) == "n/a"
    assert without.render(lambda path: 10**400) is None


def test_pushed_text_is_cleaned_of_control_and_bidi_characters_when_rendered() -> None:
    template = Template.parse("Offer: {content.zone.title}")
    text = template.render(lambda path: "\u202eevil\x1b[2J\tnow\u2069")
    assert text == "Offer: evil [2J now"


class Ticks:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_the_refusal_budget_allows_a_burst_then_its_rate() -> None:
    ticks = Ticks()
    bucket = TokenBucket(rate=10.0, burst=3.0, clock=ticks)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    assert bucket.wait_s() == pytest.approx(0.1)
    ticks.t = 0.1
    assert (bucket.take(), bucket.take()) == (True, False)
    ticks.t = 100.0  # a long quiet spell saves up the burst, no more
    assert sum(bucket.take() for _ in range(10)) == 3


def test_a_flood_of_log_lines_becomes_one_a_window_per_key_with_a_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ticks = Ticks()
    throttle = Throttle(logging.getLogger("test.throttle"), logging.WARNING, clock=ticks)
    with caplog.at_level(logging.WARNING, logger="test.throttle"):
        for i in range(1000):
            throttle("schema", "refused %d", i)
            throttle("nested", "nested %d", i)
        ticks.t = 61.0
        throttle("schema", "refused %d", 1000)
    assert [r.getMessage() for r in caplog.records] == [
        "refused 0",
        "nested 0",
        "refused 1000 (999 more in the last 60 s)",
    ]
