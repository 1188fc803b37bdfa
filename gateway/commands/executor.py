"""What an output (relay board, serial display, e-paper access point) implements so commands can
run on it.

The router validates a command against the schema of the output's ``kind`` before calling
``execute``, so an executor only ever sees the models of its own kind (see ``models.py``):
``relay`` gets ``RelaySwitch``; ``serial-display`` gets ``DisplayShow``, ``DisplayClear`` or
``DisplayBrightness``; ``openepaperlink`` gets ``EpaperShow``. ``execute`` returns once the
output has done it (a ``duration_s`` reversal may run on afterwards) and raises ``OutputError``
with a message for the central server when it could not. The router also bounds every call
with ``EXECUTE_TIMEOUT_S``; running out of time counts as a failure, and the call is cancelled.
"""

from __future__ import annotations

from typing import Final, Protocol

from gateway.commands.models import AnyCommand, OutputKind
from gateway.errors import GatewayError

EXECUTE_TIMEOUT_S: Final = 10.0


class OutputError(GatewayError):
    """An output could not carry out a command; ``str(error)`` goes to the result message."""


class OutputExecutor(Protocol):
    @property
    def kind(self) -> OutputKind: ...

    async def execute(self, command: AnyCommand) -> None: ...
