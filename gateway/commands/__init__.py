"""Commands from central servers to the gateway's outputs, over MQTT."""

from gateway.commands.executor import EXECUTE_TIMEOUT_S, OutputError, OutputExecutor
from gateway.commands.ledger import CommandLedger
from gateway.commands.models import (
    MAX_PAYLOAD_BYTES,
    SCHEMAS,
    AnyCommand,
    Command,
    DisplayBrightness,
    DisplayClear,
    DisplayCommand,
    DisplayShow,
    EpaperCommand,
    EpaperShow,
    OutputKind,
    RelayCommand,
    RelaySwitch,
)
from gateway.commands.result import CommandResult
from gateway.commands.router import CommandRouter

__all__ = [
    "EXECUTE_TIMEOUT_S",
    "MAX_PAYLOAD_BYTES",
    "SCHEMAS",
    "AnyCommand",
    "Command",
    "CommandLedger",
    "CommandResult",
    "CommandRouter",
    "DisplayBrightness",
    "DisplayClear",
    "DisplayCommand",
    "DisplayShow",
    "EpaperCommand",
    "EpaperShow",
    "OutputError",
    "OutputExecutor",
    "OutputKind",
    "RelayCommand",
    "RelaySwitch",
]
