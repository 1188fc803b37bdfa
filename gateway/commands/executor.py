"""What an output (relay board, serial display, e-paper access point) implements so commands can
run on it.

The router validates a command against the schema of the output's ``kind`` before calling
``execute``, so an executor only ever sees the models of its own kind (see ``models.py``):
``relay`` gets ``RelaySwitch``; ``serial-display`` gets ``DisplayShow``, ``DisplayClear`` or
``DisplayBrightness``; ``openepaperlink`` gets ``EpaperShow``. ``execute`` returns once the
output has done it (a ``duration_s`` reversal may run on afterwards) and raises ``OutputError``
with a message for the central server when it could not. The router also bounds every call
with ``EXECUTE_TIMEOUT_S``; running out of time counts as a failure, and the call is cancelled.

Both callers (the command router and the rules' dispatcher) call ``execute`` through
``carry_out``, which wraps anything else an output raises, once: a bug in one output costs one
failed command or action, never the task that called it.
"""

from __future__ import annotations

import logging
from typing import Final, Protocol

from gateway.commands.models import AnyCommand, OutputKind
from gateway.errors import GatewayError

log = logging.getLogger(__name__)

EXECUTE_TIMEOUT_S: Final = 10.0


class OutputError(GatewayError):
    """An output could not carry out a command; ``str(error)`` goes to the result message."""


class OutputExecutor(Protocol):
    @property
    def kind(self) -> OutputKind: ...

    async def execute(self, command: AnyCommand) -> None: ...


class OutputBugError(OutputError):
    """An output raised something other than ``OutputError``: a bug, logged where it was
    wrapped; trying the command again would meet it again."""


async def carry_out(executor: OutputExecutor, command: AnyCommand, output_id: str) -> None:
    """``executor.execute(command)``, raising only ``OutputError`` (``OutputBugError`` for a
    bug, logged with its traceback) besides the caller's own timeout and cancellation."""
    try:
        await executor.execute(command)
    except (OutputError, TimeoutError):
        raise
    except Exception as exc:
        log.exception("output %s failed on command %s", output_id, command.command_id)
        raise OutputBugError(f"internal error: {type(exc).__name__}: {exc}") from exc
