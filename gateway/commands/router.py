"""From a raw MQTT message on ``P/cmd/{output_id}`` to at most one actuation and one result.

Checks run cheapest first, and a command that fails any of them is never executed: size (before
parsing, so a huge payload costs nothing), a known output, JSON, the schema of that output's
kind, an ``expires_at`` not beyond the ledger's memory, then expiry (a late command is not
recorded: resent, it is refused as late again), then the ledger (a replay is refused, and so is
a command that storage cannot record now). Every message gets exactly one result, echoing the
``command_id`` whenever one can be read.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

from pydantic import ValidationError

from gateway.commands.executor import EXECUTE_TIMEOUT_S, OutputError, OutputExecutor
from gateway.commands.ledger import OK, CommandLedger
from gateway.commands.models import COMMAND_ID_PATTERN, MAX_PAYLOAD_BYTES, SCHEMAS, AnyCommand
from gateway.commands.result import CommandResult
from gateway.errors import StorageUnavailable
from gateway.outbox import Outbox

log = logging.getLogger(__name__)

MAX_PENDING: Final = 64  # commands executing or queued at once; more are refused as busy
_COMMAND_ID: Final = re.compile(COMMAND_ID_PATTERN)


class Refused(Exception):
    def __init__(self, reason: str, command_id: str | None) -> None:
        super().__init__(reason)
        self.command_id = command_id


class CommandRouter:
    def __init__(
        self,
        ledger: CommandLedger,
        executors: Mapping[str, OutputExecutor],
        *,
        clock: Callable[[], float] = time.time,
        timeout_s: float = EXECUTE_TIMEOUT_S,
    ) -> None:
        self._ledger = ledger
        self._executors = dict(executors)
        self._locks = {output_id: asyncio.Lock() for output_id in executors}
        self._clock = clock
        self._timeout_s = timeout_s
        self._pending = 0
        self.executed = 0
        self.failed = 0
        self.refused = 0

    @classmethod
    def on_outbox(cls, outbox: Outbox, executors: Mapping[str, OutputExecutor]) -> CommandRouter:
        """The daemon's router: its ledger is a table in the outbox database."""
        return cls(CommandLedger(outbox), executors)

    async def handle(self, output_id: str, payload: bytes) -> CommandResult:
        now = self._clock()
        try:
            command, executor = await self._accept(output_id, payload, now)
        except Refused as refusal:
            self.refused += 1
            log.info("command for %s refused: %s", output_id, refusal)
            return CommandResult(output_id, refusal.command_id, False, str(refusal), now)
        self._pending += 1
        try:
            error = await self._execute(output_id, command, executor)
        finally:
            self._pending -= 1
        await self._ledger.settle(command.command_id, error or OK)
        return CommandResult(output_id, command.command_id, error is None, error, self._clock())

    async def _accept(
        self, output_id: str, payload: bytes, now: float
    ) -> tuple[AnyCommand, OutputExecutor]:
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise Refused(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}", None)
        obj = _parse(payload)
        command_id = _command_id_of(obj)
        executor = self._executors.get(output_id)
        if executor is None:
            raise Refused(f"unknown output {output_id!r}", command_id)
        command = _validate(executor, payload, command_id)
        expires = command.expires_at.timestamp() if command.expires_at else None
        if expires is not None and expires > now + self._ledger.keep_s:
            raise Refused(f"expires_at is more than {self._ledger.keep_s:.0f} s ahead", command_id)
        if self._pending >= MAX_PENDING:
            raise Refused(f"busy: {MAX_PENDING} commands pending", command_id)
        if expires is not None and expires <= now:
            raise Refused(f"expired {now - expires:.3f} s before it arrived", command_id)
        earlier = await self._claim(command, output_id)
        if earlier is not None:
            raise Refused(f"replayed: this command_id was already seen ({earlier})", command_id)
        return command, executor

    async def _claim(self, command: AnyCommand, output_id: str) -> str | None:
        self._pending += 1  # a claim waiting for the outbox's writer thread counts as pending
        try:
            return await self._ledger.claim(command.command_id, output_id)
        except StorageUnavailable as exc:
            raise Refused(f"storage unavailable: {exc}", command.command_id) from None
        finally:
            self._pending -= 1

    async def _execute(
        self, output_id: str, command: AnyCommand, executor: OutputExecutor
    ) -> str | None:
        """Run the command on its output, one at a time per output; returns the error or None."""
        async with self._locks[output_id]:
            try:
                async with asyncio.timeout(self._timeout_s):
                    await executor.execute(command)
            except OutputError as exc:
                self.failed += 1
                return str(exc) or type(exc).__name__
            except TimeoutError:
                self.failed += 1
                return f"timed out after {self._timeout_s:g} s"
            except Exception as exc:
                # A bug in one output must cost one failed result, not the command channel.
                log.exception("output %s failed on command %s", output_id, command.command_id)
                self.failed += 1
                return f"internal error: {type(exc).__name__}: {exc}"
        self.executed += 1
        return None


def _parse(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Refused(f"malformed JSON: {exc}", None) from None


def _command_id_of(obj: Any) -> str | None:
    """The command_id to echo in a refusal, if the payload carries a well-formed one."""
    if not isinstance(obj, dict):
        raise Refused("a command is a JSON object", None)
    value = obj.get("command_id")
    return value if isinstance(value, str) and _COMMAND_ID.match(value) else None


def _validate(executor: OutputExecutor, payload: bytes, command_id: str | None) -> AnyCommand:
    try:
        return SCHEMAS[executor.kind].validate_json(payload)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '-'}: {e['msg']}" for e in exc.errors()[:3]
        )
        raise Refused(f"not a valid {executor.kind} command: {problems}", command_id) from None
