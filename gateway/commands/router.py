"""From a raw MQTT message on ``P/cmd/{output_id}`` to at most one actuation and one result.

Handling is two steps. ``screen`` runs the checks that need neither storage nor an output,
cheapest first, and a command that fails one is never executed: size (before parsing, so a huge
payload costs nothing), nesting depth and number sizes (``gateway.wire.bounded_json``), a JSON
object, a known output, the schema of that output's kind (strict types, showable text), a clock
that can judge ``expires_at``, an ``expires_at`` neither past nor beyond the ledger's memory, a
``command_id`` not among the ``RECENT_IDS`` the ledger outcome of which is also kept in memory,
and a free slot (at most ``MAX_PENDING`` commands between screening and their result). So a
flood of bad, expired or replayed commands costs no storage. ``run`` then claims the
``command_id`` in the ledger (a replay is refused), refuses a command that expired while it
waited (remembered as refused), executes, and settles the outcome. Every message gets exactly
one result, echoing the ``command_id`` whenever one can be read.

Refusals are counted by ``code`` and logged once a minute per code at most
(``gateway.runtime.ratelog``, decided before a log record is built), so a flood of bad commands can
flood neither the journal nor the event loop; what a sender wrote (an output id, a reason quoting
it) is shortened before it is logged or echoed.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from pydantic import ValidationError

from gateway.commands.clocksync import clock_synchronised
from gateway.commands.executor import (
    EXECUTE_TIMEOUT_S,
    OutputError,
    OutputExecutor,
    carry_out,
)
from gateway.commands.ledger import OK, RUNNING, CommandLedger
from gateway.commands.models import COMMAND_ID_PATTERN, MAX_PAYLOAD_BYTES, SCHEMAS, AnyCommand
from gateway.commands.result import CommandResult
from gateway.errors import GatewayError, InputError, Refused
from gateway.outbox import Outbox
from gateway.runtime.ratelog import Throttle
from gateway.wire import bounded_json

log = logging.getLogger(__name__)
_refusals = Throttle(log, logging.INFO)

MAX_PENDING: Final = 64  # commands executing or queued at once; more are refused as busy
RECENT_IDS: Final = 10_000  # command_ids whose ledger outcome is also kept in memory
MAX_DEPTH: Final = 3  # a command is a flat object; e-paper lines are one list inside it
SHOWN_CHARS: Final = 64  # of a sender's text quoted in a result or a log line
LIMITS: Final = bounded_json.Limits(MAX_PAYLOAD_BYTES, MAX_DEPTH, max_keys=16)
_COMMAND_ID: Final = re.compile(COMMAND_ID_PATTERN)


@dataclass(frozen=True, slots=True)
class Accepted:
    """A command that passed ``screen``: it holds one of the ``MAX_PENDING`` slots."""

    output_id: str
    command: AnyCommand
    executor: OutputExecutor
    received: float  # unix time of arrival; expiry is judged against it


class CommandRouter:
    def __init__(
        self,
        ledger: CommandLedger,
        executors: Mapping[str, OutputExecutor],
        *,
        clock: Callable[[], float] = time.time,
        synchronised: Callable[[], bool] = clock_synchronised,
        timeout_s: float = EXECUTE_TIMEOUT_S,
    ) -> None:
        self._ledger = ledger
        self._executors = dict(executors)
        self._locks = {output_id: asyncio.Lock() for output_id in executors}
        self._clock = clock
        self._synchronised = synchronised
        self._timeout_s = timeout_s
        self._pending = 0
        self._recent: dict[str, str] = {}  # command_id -> outcome, oldest first
        self.executed = 0
        self.failed = 0
        self.refused_by: Counter[str] = Counter()

    @classmethod
    def on_outbox(
        cls,
        outbox: Outbox,
        executors: Mapping[str, OutputExecutor],
        *,
        trust_unsynchronised_clock: bool = False,
    ) -> CommandRouter:
        """The daemon's router: its ledger is a table in the outbox database."""
        synchronised = (lambda: True) if trust_unsynchronised_clock else clock_synchronised
        return cls(CommandLedger(outbox), executors, synchronised=synchronised)

    @property
    def refused(self) -> int:
        return self.refused_by.total()

    async def handle(self, output_id: str, payload: bytes) -> CommandResult:
        screened = self.screen(output_id, payload)
        return screened if isinstance(screened, CommandResult) else await self.run(screened)

    def screen(self, output_id: str, payload: bytes) -> Accepted | CommandResult:
        """The checks that touch neither storage nor an output; a refusal is the result."""
        now = self._clock()
        try:
            command, executor = self._check(output_id, payload, now)
        except Refused as refusal:
            return self._refusal(output_id, refusal, now)
        self._pending += 1
        return Accepted(output_id, command, executor, now)

    def refuse(self, output_id: str, reason: str, code: str) -> CommandResult:
        """A refusal decided outside the router (a full inbound queue), counted like its own."""
        return self._refusal(output_id, Refused(reason, None, code), self._clock())

    async def run(self, accepted: Accepted) -> CommandResult:
        """Claim, judge expiry, execute and settle one screened command; frees its slot."""
        try:
            return await self._run(accepted)
        except Refused as refusal:
            return self._refusal(accepted.output_id, refusal, accepted.received)
        finally:
            self._pending -= 1

    async def _run(self, accepted: Accepted) -> CommandResult:
        output_id, command = accepted.output_id, accepted.command
        command_id = command.command_id
        try:
            earlier = await self._ledger.claim(command_id, output_id)
        except GatewayError as exc:
            raise Refused(f"storage unavailable: {exc}", command_id, "storage") from None
        self._remember(command_id, earlier or RUNNING)
        if earlier is not None:
            reason = f"replayed: this command_id was already seen ({earlier})"
            raise Refused(reason, command_id, "replayed")
        expires = command.expires_at.timestamp() if command.expires_at else None
        late = self._clock()  # screen refused it if it came expired; it may have waited since
        if expires is not None and expires <= late:
            reason = f"expired {late - expires:.3f} s before it could run"
            await self._ledger.settle(command_id, f"refused: {reason}")
            self._remember(command_id, f"refused: {reason}")
            raise Refused(reason, command_id, "expired")
        error = await self._execute(output_id, command, accepted.executor)
        await self._ledger.settle(command_id, error or OK)
        self._remember(command_id, error or OK)
        return CommandResult(output_id, command_id, error is None, error, self._clock())

    def _refusal(self, output_id: str, refusal: Refused, now: float) -> CommandResult:
        self.refused_by[refusal.code] += 1
        message = "command refused (%s) for %s: %s"
        _refusals(refusal.code, message, refusal.code, shown(output_id), refusal)
        return CommandResult(output_id, refusal.sender_id, False, str(refusal), now, refused=True)

    def _check(
        self, output_id: str, payload: bytes, now: float
    ) -> tuple[AnyCommand, OutputExecutor]:
        obj = _parse(payload)
        command_id = _command_id_of(obj)
        executor = self._executors.get(output_id)
        if executor is None:
            raise Refused(f"unknown output {shown(output_id)}", command_id, "unknown_output")
        command = _validate(executor, payload, command_id)
        if command.expires_at is not None:
            self._check_expiry(command.expires_at.timestamp(), now, command.command_id)
        earlier = self._recent.get(command.command_id)
        if earlier is not None:
            reason = f"replayed: this command_id was already seen ({earlier})"
            raise Refused(reason, command_id, "replayed")
        if self._pending >= MAX_PENDING:
            raise Refused(f"busy: {MAX_PENDING} commands pending", command_id, "busy")
        return command, executor

    def _remember(self, command_id: str, outcome: str) -> None:
        """What the ledger holds for ``command_id``, kept for the most recent RECENT_IDS so
        that resending one is refused without a query."""
        self._recent.pop(command_id, None)
        self._recent[command_id] = outcome
        if len(self._recent) > RECENT_IDS:
            del self._recent[next(iter(self._recent))]

    def _check_expiry(self, expires: float, now: float, command_id: str) -> None:
        if not self._synchronised():
            raise Refused(
                "cannot judge expires_at: the system clock is not synchronised "
                "(send the command without expires_at, or see commands.trust_unsynchronised_clock)",
                command_id,
                "clock_unsynchronised",
            )
        if expires > now + self._ledger.keep_s:
            reason = f"expires_at is more than {self._ledger.keep_s:.0f} s ahead"
            raise Refused(reason, command_id, "expiry_horizon")
        if expires <= now:
            # Refused before the ledger: an expired command stays expired when resent, and a
            # flood of them must cost no writes nor push real ids out of the ledger.
            raise Refused(f"expired {now - expires:.3f} s before it arrived", command_id, "expired")

    async def _execute(
        self, output_id: str, command: AnyCommand, executor: OutputExecutor
    ) -> str | None:
        """Run the command on its output, one at a time per output; returns the error or None."""
        async with self._locks[output_id]:
            try:
                async with asyncio.timeout(self._timeout_s):
                    await carry_out(executor, command, output_id)
            except OutputError as exc:
                self.failed += 1
                return str(exc) or type(exc).__name__
            except TimeoutError:
                self.failed += 1
                return f"timed out after {self._timeout_s:g} s"
        self.executed += 1
        return None


def shown(text: str) -> str:
    """``text`` quoted, and shortened to ``SHOWN_CHARS`` characters when it is longer."""
    if len(text) <= SHOWN_CHARS:
        return repr(text)
    return f"{text[:SHOWN_CHARS]!r}... ({len(text)} characters)"


def _parse(payload: bytes) -> object:
    try:
        return bounded_json.parse(payload, LIMITS)
    except InputError as exc:
        raise Refused(str(exc), None, exc.code) from None


def _command_id_of(obj: object) -> str | None:
    """The command_id to echo in a refusal, if the payload carries a well-formed one."""
    if not isinstance(obj, dict):
        raise Refused("a command is a JSON object", None, "object")
    value = obj.get("command_id")
    return value if isinstance(value, str) and _COMMAND_ID.match(value) else None


def _validate(executor: OutputExecutor, payload: bytes, command_id: str | None) -> AnyCommand:
    try:
        return SCHEMAS[executor.kind].validate_json(payload)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '-'}: {e['msg']}" for e in exc.errors()[:3]
        )
        reason = f"not a valid {executor.kind} command: {problems}"
        raise Refused(reason, command_id, "schema") from None
