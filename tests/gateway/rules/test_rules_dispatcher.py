"""The dispatcher against fake outputs (the ``OutputExecutor`` seam): which commands an action
becomes, retries within its deadline, and the ``action.executed`` event for each action."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

import pytest

from gateway.clock import SystemClock
from gateway.commands.executor import OutputError
from gateway.commands.models import AnyCommand, DisplayShow, EpaperShow, OutputKind, RelaySwitch
from gateway.config.outputs import OpenEPaperLinkOutput, RelayOutput, SerialDisplayOutput
from gateway.config.rules import ActionConfig
from gateway.events.model import ActionExecuted, PresenceDwell, Subject, format_ts
from gateway.outputs.base import InvalidCommandError
from gateway.rules.dispatcher import Dispatcher, Identity
from gateway.rules.engine import Planned

pytestmark = pytest.mark.timeout(10)

PSEUDONYM = "7e" * 32
MAC = "0000021F8A3C4D5E"
OUTPUTS = [
    SerialDisplayOutput(id="disp", driver="serial-display", port="/dev/null", line_length=8),
    RelayOutput(id="lamp", driver="relay", port="/dev/null", channels=2),
    OpenEPaperLinkOutput.model_validate(
        {
            "id": "labels",
            "driver": "openepaperlink",
            "url": "http://192.0.2.1",
            "tags": {"cheese": MAC},
        }
    ),
]


class FakeOutput:
    """Records commands; fails the first ``failures`` with ``error``."""

    def __init__(self, kind: OutputKind, failures: int = 0, error: type[OutputError] = OutputError):
        self._kind = kind
        self.failures = failures
        self.error = error
        self.commands: list[tuple[float, AnyCommand]] = []

    @property
    def kind(self) -> OutputKind:
        return self._kind

    async def execute(self, command: AnyCommand) -> None:
        self.commands.append((asyncio.get_running_loop().time(), command))
        if self.failures:
            self.failures -= 1
            raise self.error("display busy")


def planned(output: str, text: str | None = None, **action: Any) -> Planned:
    trigger = PresenceDwell(
        id="trigger-1",
        ts=format_ts(1_790_000_000.0),
        store="s",
        gateway="g",
        zone="shelf-a",
        subject=Subject(kind="customer", id=PSEUDONYM),
        dwell_s=5.0,
        since=format_ts(0),
    )
    config = ActionConfig.model_validate({"output": output, **action})
    return Planned("dwell-offer", trigger, output, config, text, 0, SystemClock().now())


def dispatcher(
    outputs: dict[str, FakeOutput], emit: Callable[[ActionExecuted], None] = lambda e: None
) -> Dispatcher:
    return Dispatcher(outputs, OUTPUTS, emit, identity=Identity("s", "g"), clock=SystemClock())


async def test_a_show_becomes_one_display_command_cut_to_the_line_length() -> None:
    disp = FakeOutput("serial-display")
    d = dispatcher({"disp": disp})
    action = planned("disp", "Fresh bread today", do="show", line=2, duration_s=10)
    assert await d.execute(action) == (None, 1)
    ((_, command),) = disp.commands
    assert isinstance(command, DisplayShow)
    assert (command.line, command.text, command.duration_s) == (2, "Fresh br", 10)
    assert command.command_id.startswith("rule.dwell-offer.")
    assert command.expires_at is not None


async def test_a_blink_switches_the_channel_on_times_times_a_period_apart() -> None:
    lamp = FakeOutput("relay")
    d = dispatcher({"lamp": lamp})
    assert await d.execute(planned("lamp", do="blink", channel=2, times=3, period_s=0.1)) == (
        None,
        3,
    )
    commands = [c for _, c in lamp.commands if isinstance(c, RelaySwitch)]
    assert [(c.channel, c.on, c.duration_s) for c in commands] == [(2, True, 0.05)] * 3
    assert len({c.command_id for c in commands}) == 3
    expiries = [c.expires_at for c in commands]
    assert expiries == sorted(expiries)
    assert expiries[0] != expiries[-1]  # each pulse has its own deadline
    times = [t for t, _ in lamp.commands]
    assert all(0.09 <= b - a <= 0.3 for a, b in itertools.pairwise(times))


async def test_an_epaper_show_names_the_tag_by_mac_and_splits_lines() -> None:
    labels = FakeOutput("openepaperlink")
    d = dispatcher({"labels": labels})
    await d.execute(planned("labels", "Gouda\n3,99 €", do="show", tag="cheese", duration_s=90))
    ((_, command),) = labels.commands
    assert isinstance(command, EpaperShow)
    assert (command.mac, command.lines, command.ttl_s) == (MAC, ["Gouda", "3,99 €"], 90)


async def test_a_failed_attempt_is_retried_within_the_deadline() -> None:
    disp = FakeOutput("serial-display", failures=2)
    d = dispatcher({"disp": disp})
    assert await d.execute(planned("disp", "x", do="show", deadline_s=2)) == (None, 3)


async def test_an_impossible_command_is_not_retried() -> None:
    disp = FakeOutput("serial-display", failures=5, error=InvalidCommandError)
    d = dispatcher({"disp": disp})
    assert await d.execute(planned("disp", "x", do="show")) == ("display busy", 1)


async def test_an_output_that_keeps_failing_is_given_up_at_the_deadline() -> None:
    disp = FakeOutput("serial-display", failures=1000)
    d = dispatcher({"disp": disp})
    loop = asyncio.get_running_loop()
    start = loop.time()
    error, attempts = await d.execute(planned("disp", "x", do="show", deadline_s=0.3))
    assert 0.25 <= loop.time() - start < 1.0
    assert error == "display busy"
    assert attempts == len(disp.commands) >= 3


class Hanging(FakeOutput):
    async def execute(self, command: AnyCommand) -> None:
        await super().execute(command)
        await asyncio.Event().wait()


async def test_an_output_that_never_answers_is_cancelled_at_the_deadline() -> None:
    d = dispatcher({"disp": Hanging("serial-display")})
    error, attempts = await d.execute(planned("disp", "x", do="show", deadline_s=0.2))
    assert error is not None
    assert "not acknowledged within 0.2 s" in error
    assert attempts == 1


async def test_submitted_actions_run_beside_the_caller_and_each_becomes_an_event() -> None:
    events: list[ActionExecuted] = []
    outputs = {
        "disp": FakeOutput("serial-display"),
        "lamp": FakeOutput("relay", failures=1, error=InvalidCommandError),
    }
    d = dispatcher(outputs, events.append)
    runner = asyncio.create_task(d.run())
    d.submit([planned("disp", "hi", do="show"), planned("lamp", do="switch", channel=1)])
    d.submit([planned("nowhere", do="clear")])
    async with asyncio.timeout(5):
        while len(events) < 3:
            await asyncio.sleep(0.01)
    runner.cancel()
    by_output = {e.output: e for e in events}
    shown = by_output["disp"]
    assert (shown.ok, shown.error, shown.rule, shown.trigger) == (
        True,
        None,
        "dwell-offer",
        "trigger-1",
    )
    assert (shown.zone, shown.subject) == ("shelf-a", Subject(kind="customer", id=PSEUDONYM))
    assert 0 <= shown.latency_ms < 1000
    assert (by_output["lamp"].ok, by_output["lamp"].error) == (False, "display busy")
    assert by_output["nowhere"].error == "no output 'nowhere'"
    assert (d.executed, d.failed) == (1, 2)
    # The event is a stored event like any other: its JSON carries the funnel's fields.
    body = shown.to_json()
    assert '"type":"action.executed"' in body
    assert '"trigger":"trigger-1"' in body


class Broken(FakeOutput):
    async def execute(self, command: AnyCommand) -> None:
        raise KeyError("a bug in the session")


async def test_a_bug_in_an_output_fails_its_action_and_nothing_else(
    caplog: pytest.LogCaptureFixture,
) -> None:
    d = dispatcher({"disp": Broken("serial-display")})
    error, attempts = await d.execute(planned("disp", "x", do="show"))
    assert error == "internal error: KeyError: 'a bug in the session'"
    assert attempts == 1
    assert "failed on" in caplog.text
