"""Planned actions onto the outputs, each reported as an ``action.executed`` event.

``submit`` never waits: the pipeline hands over what the engine granted and goes on with the
next batch, while ``run`` carries each action out in a task of its own TaskGroup. An action is
one or more commands of ``gateway.commands.models`` (a blink is ``times`` switches), executed by
the output's session, which retries unanswered frames itself. On top of that a failed command
is tried again here until the action's ``deadline_s`` (a queue that was full, an output that
was reconnecting), except one the output can never carry out (``InvalidCommandError``). Then,
done or not, one ``action.executed`` event says so, with the rule, the triggering event and the
latency from the rule's decision to the output's acknowledgement.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from gateway.clock import Clock
from gateway.commands.executor import OutputBugError, OutputError, OutputExecutor, carry_out
from gateway.commands.models import (
    DISPLAY_TEXT_MAX,
    EPAPER_LINES,
    EPAPER_TEXT_MAX,
    AnyCommand,
    DisplayClear,
    DisplayShow,
    EpaperShow,
    RelaySwitch,
)
from gateway.config.outputs import OpenEPaperLinkOutput, OutputConfig, SerialDisplayOutput
from gateway.events.ids import new_event_id
from gateway.events.model import ActionExecuted, format_ts
from gateway.outputs.base import InvalidCommandError
from gateway.rules.engine import Planned

log = logging.getLogger(__name__)

MAX_RUNNING: Final = 64  # actions in progress at once; more are reported as failed at once
RETRY_DELAY_S: Final = (0.05, 0.5)  # first pause between attempts, cap; doubling in between
EPAPER_TTL_S: Final = 3600  # an e-paper label keeps what it shows this long by default


@dataclass(frozen=True, slots=True)
class Step:
    command: AnyCommand
    pause_s: float = 0.0  # before the next step (blink)


@dataclass(frozen=True, slots=True)
class Identity:
    store: str
    gateway: str


class Dispatcher:
    def __init__(
        self,
        executors: Mapping[str, OutputExecutor],
        outputs: Sequence[OutputConfig],
        emit: Callable[[ActionExecuted], None],
        *,
        identity: Identity,
        clock: Clock,
    ) -> None:
        self._executors = executors
        self._outputs = {o.id: o for o in outputs}
        self._emit = emit
        self._identity = identity
        self._clock = clock
        self._queue: deque[Planned] = deque()
        self._wake = asyncio.Event()
        self._running = 0
        self._ids = itertools.count(1)
        self.executed = 0
        self.failed = 0

    def submit(self, planned: Sequence[Planned]) -> None:
        """Hand over granted actions; returns at once (call from the pipeline)."""
        self._queue.extend(planned)
        if planned:
            self._wake.set()

    async def run(self) -> None:
        """Carry out submitted actions until cancelled (which cancels those in progress)."""
        async with asyncio.TaskGroup() as tg:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._queue:
                    planned = self._queue.popleft()
                    if self._running >= MAX_RUNNING:
                        self._report(planned, f"busy: {MAX_RUNNING} actions in progress", 0)
                        continue
                    self._running += 1
                    tg.create_task(self._carry_out(planned))

    async def _carry_out(self, planned: Planned) -> None:
        try:
            error, attempts = await self.execute(planned)
        finally:
            self._running -= 1
        self._report(planned, error, attempts)

    async def execute(self, planned: Planned) -> tuple[str | None, int]:
        """Every step of ``planned``: (None, attempts) when done, else (why not, attempts)."""
        executor = self._executors.get(planned.output)
        if executor is None:
            return f"no output {planned.output!r}", 0
        try:
            steps = self.steps(planned)
        except ValueError as exc:
            return str(exc), 0
        attempts = 0
        deadline_s = planned.action.deadline_s
        for number, step in enumerate(steps, start=1):
            # Each step gets its own id and expiry when it starts: a blink's later pulses must
            # not inherit a deadline that ran out while the earlier ones were shown.
            expires = datetime.fromtimestamp(time.time() + deadline_s, UTC)
            command_id = step.command.command_id + (f".{number}" if len(steps) > 1 else "")
            command = step.command.model_copy(
                update={"command_id": command_id, "expires_at": expires}
            )
            error, tries = await self._step(planned.output, executor, command, deadline_s)
            attempts += tries
            if error is not None:
                return error, attempts
            if step.pause_s:
                await asyncio.sleep(step.pause_s)
        return None, attempts

    async def _step(
        self, output_id: str, executor: OutputExecutor, command: AnyCommand, deadline_s: float
    ) -> tuple[str | None, int]:
        loop, attempts, delay = asyncio.get_running_loop(), 0, RETRY_DELAY_S[0]
        deadline = loop.time() + deadline_s
        error = "deadline passed before the first attempt"
        while loop.time() < deadline:
            attempts += 1
            try:
                async with asyncio.timeout_at(deadline):
                    # A bug in one output costs one failed action, not the dispatcher (whose
                    # TaskGroup would end every other action with it): carry_out wraps it.
                    await carry_out(executor, command, output_id)
                return None, attempts
            except (InvalidCommandError, OutputBugError) as exc:
                return str(exc), attempts  # trying again cannot help
            except OutputError as exc:
                error = str(exc) or type(exc).__name__
            except TimeoutError:
                return f"not acknowledged within {deadline_s:g} s: {error}", attempts
            await asyncio.sleep(min(delay, max(0.0, deadline - loop.time())))
            delay = min(2 * delay, RETRY_DELAY_S[1])
        return error, attempts

    def steps(self, planned: Planned) -> list[Step]:
        """The commands that carry out ``planned`` on its output (ValueError if none can);
        ``expires_at`` is set when each one starts."""
        action, output = planned.action, self._outputs.get(planned.output)
        cid = f"rule.{planned.rule}.{next(self._ids)}"
        match action.do:
            case "switch":
                switch = RelaySwitch(command_id=cid, action="switch", channel=action.channel,
                                     on=action.on, duration_s=action.duration_s)  # fmt: skip
                return [Step(switch)]
            case "blink":
                pulse = RelaySwitch(command_id=cid, action="switch", channel=action.channel,
                                    on=True, duration_s=action.period_s / 2)  # fmt: skip
                return [Step(pulse, action.period_s)] * (action.times - 1) + [Step(pulse)]
            case "clear":
                return [Step(DisplayClear(command_id=cid, action="clear"))]
            case "show" if isinstance(output, OpenEPaperLinkOutput):
                return [Step(_epaper(planned, output, cid))]
            case "show":
                width = output.line_length if isinstance(output, SerialDisplayOutput) else 0
                text = (planned.text or "")[: min(width or DISPLAY_TEXT_MAX, DISPLAY_TEXT_MAX)]
                show = DisplayShow(command_id=cid, action="show", line=action.line, text=text,
                                   duration_s=action.duration_s)  # fmt: skip
                return [Step(show)]
        raise ValueError(f"cannot {action.do} on {planned.output}")

    def _report(self, planned: Planned, error: str | None, attempts: int) -> None:
        if error is None:
            self.executed += 1
        else:
            self.failed += 1
            log.warning("rule %s on %s failed: %s", planned.rule, planned.output, error)
        self._emit(self.event(planned, error, attempts))

    def event(self, planned: Planned, error: str | None, attempts: int) -> ActionExecuted:
        now = self._clock.now()
        wall = self._clock.wall(now)
        trigger = planned.trigger
        return ActionExecuted(
            id=str(new_event_id(int(wall * 1000))),
            ts=format_ts(wall),
            store=self._identity.store,
            gateway=self._identity.gateway,
            zone=trigger.zone,
            subject=trigger.subject,
            rule=planned.rule,
            trigger=trigger.id,
            output=planned.output,
            action=planned.action.do,
            ok=error is None,
            error=error,
            latency_ms=round(max(0.0, now - planned.at) * 1000, 1),
            attempts=attempts,
        )


def _epaper(planned: Planned, output: OpenEPaperLinkOutput, command_id: str) -> EpaperShow:
    action = planned.action
    if action.tag is None or action.tag not in output.tags:
        raise ValueError(f"{output.id} has no tag {action.tag!r}")
    lines = (planned.text or "").split("\n")[:EPAPER_LINES]
    ttl = EPAPER_TTL_S if action.duration_s is None else max(1, math.ceil(action.duration_s))
    return EpaperShow.model_validate(
        {"command_id": command_id, "action": "show", "mac": output.tags[action.tag],
         "lines": [line[:EPAPER_TEXT_MAX] for line in lines], "ttl_s": ttl}
    )  # fmt: skip
