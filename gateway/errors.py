"""The one error hierarchy of the gateway layer. Foreign exceptions are wrapped once, at the
boundary where they enter (TOML and pydantic in config, sqlite3 in the outbox, aiomqtt in the
uplink)."""

from __future__ import annotations

from dataclasses import dataclass


class GatewayError(Exception):
    """Root of every error the gateway raises on purpose."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a config file, located as precisely as the file allows."""

    file: str
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.path}: {self.message}"


class ConfigError(GatewayError):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


class OutboxError(GatewayError):
    """The outbox database cannot be opened, migrated or written."""


class StorageUnavailable(OutboxError):
    """The outbox cannot record this now (full, read-only, failing): the caller refuses it, which
    is the safe side for a command (at most once)."""


class InputError(GatewayError):
    """A message from outside (an MQTT payload, a cached copy of one) broke a limit or a schema;
    ``str(error)`` says which, in words fit for a command result or a log line, and ``code``
    names the limit in one word for counters."""

    def __init__(self, message: str, code: str = "invalid") -> None:
        super().__init__(message)
        self.code = code


class Refused(GatewayError):
    """A command or a request refused before it ran (gateway/commands/router.py,
    gateway/uplink/requests.py): ``sender_id`` is its id where it could be read, for the result
    or response that answers it; ``code`` names the check for counters; ``str()`` the reason."""

    def __init__(self, reason: str, sender_id: str | None, code: str) -> None:
        super().__init__(reason)
        self.sender_id = sender_id
        self.code = code


class UplinkError(GatewayError):
    """The MQTT uplink failed in a way a reconnect will not fix (bad TLS files, bad credentials)."""


class SecretError(GatewayError):
    """The pseudonym secret file is missing, unreadable or too weak to use."""


class KernelBuildError(GatewayError):
    """``silentgate build-kernels`` could not build the compiled kernels (no compiler, no
    writable directory, a kernel the build cannot type)."""
