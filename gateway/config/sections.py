"""The small sections: ``[site]``, ``[storage]``, ``[privacy]``, ``[tags]``, ``[presence]``,
``[[zones]]``, ``[metrics]``, ``[web]`` and ``[commands]``."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from gateway.config.base import FilePath, Model, Name, ZoneId
from gateway.events.model import EVENT_TYPES


class SiteConfig(Model):
    store: Name
    gateway: Name


class StorageConfig(Model):
    """Where accepted events wait for the broker. ``check-config`` refuses a path the kernel
    would refuse (a name over 255 bytes, a NUL), a path whose parent is a file, and a path that
    is a directory; whether the service user may create and write it is for ``doctor`` to say,
    since ``check-config`` may run as another user."""

    path: FilePath = Path("/var/lib/silentgate/outbox.db")
    # FULL: a committed event survives power loss (an fsync per flush, ~1 per pipeline run).
    synchronous: Literal["full", "normal"] = "full"
    # The outbox file never grows past this; see docs/mqtt.md ("When the outbox fills up").
    max_bytes: Annotated[int, Field(ge=1 << 20)] = 256 << 20
    # Event types that may be dropped (never given a seq) once the outbox is nearly full.
    droppable: list[str] = Field(default_factory=lambda: ["shelf.weight"])

    @field_validator("droppable")
    @classmethod
    def _check_droppable(cls, types: list[str]) -> list[str]:
        for name in types:
            if name not in EVENT_TYPES:
                raise ValueError(f"{name!r} is not an event type ({', '.join(EVENT_TYPES)})")
            if name.startswith(("presence.", "item.")):
                raise ValueError(f"{name} events are never dropped")
        return types


class PrivacyConfig(Model):
    """In ``hmac-sha256`` mode the secret file must be a regular file holding at least 16 bytes
    once surrounding whitespace is stripped (`head -c 32 /dev/urandom | base64` makes 44);
    ``check-config``, ``run`` and a reload refuse anything else at the ``secret_file`` line.
    A file readable by others, or by its group when root does not own it, is a warning."""

    customer_ids: Literal["hmac-sha256", "raw", "omit"] = "hmac-sha256"
    secret_file: FilePath = Path("/etc/silentgate/secret")


class TagsConfig(Model):
    customer_prefixes: list[str] = Field(default_factory=list)

    @field_validator("customer_prefixes")
    @classmethod
    def _check_hex(cls, prefixes: list[str]) -> list[str]:
        for p in prefixes:
            if not re.fullmatch(r"[0-9A-Fa-f]{1,62}", p):
                raise ValueError(f"{p!r} is not a hex prefix")
        return [p.upper() for p in prefixes]


class PresenceConfig(Model):
    """The presence engine (docs/presence.md)."""

    # A subject in no zone and not read anywhere for this long is forgotten: its state is
    # reset and its id reused, so memory follows the tags seen in this horizon, not every tag
    # ever seen. Read again later, it is a new subject with a fresh presence.enter.
    forget_after_s: Annotated[float, Field(ge=60, le=7 * 86400)] = 3600.0
    # Streaming readers are read once per tick, and the stages run at a tick whose reads can
    # change something: a read waits up to this long, against CPU (docs/benchmarks.md: 80
    # keeps read -> event p99 under 100 ms at a store's load; 10 keeps a shelf display's
    # reaction near 20 ms, at several times the CPU).
    tick_ms: Annotated[float, Field(ge=1, le=1000)] = 80.0


class ZoneConfig(Model):
    id: ZoneId
    dwell_s: Annotated[float, Field(gt=0, le=86400)] = 5.0


class MetricsConfig(Model):
    """The Prometheus endpoint. Off by default; when on, it should stay on localhost (put a
    reverse proxy or an SSH tunnel in front of it to scrape from elsewhere)."""

    enabled: bool = False
    host: str = "127.0.0.1"  # the address to listen on
    port: Annotated[int, Field(ge=0, le=65535)] = 9464  # 0 picks a free port


class WebConfig(Model):
    """The installer's live page (docs/installation.md 6). Off by default; on a
    loopback address it is open to whoever can reach it there, on any other address it asks
    for the password in ``password_file`` (HTTP Basic, any user name), and ``check-config``
    refuses a non-loopback ``host`` without one. The file is checked like the privacy secret:
    a regular file of at least 16 bytes, a warning when others may read it."""

    enabled: bool = False
    host: str = "127.0.0.1"  # the address to listen on; 0.0.0.0 for every interface
    port: Annotated[int, Field(ge=0, le=65535)] = 8080  # 0 picks a free port
    # The page's password (required unless host is a loopback address).
    password_file: FilePath | None = None

    @model_validator(mode="after")
    def _password_off_loopback(self) -> WebConfig:
        if self.password_file is None and not is_loopback(self.host):
            raise ValueError(
                f"web.host {self.host!r} is not a loopback address: set web.password_file"
            )
        return self


def is_loopback(host: str) -> bool:
    """Only this machine can connect to ``host``: localhost, 127.0.0.0/8 or ::1."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve to anything


class CommandsConfig(Model):
    """How commands from central servers are judged (docs/outputs.md, "Expiry and the clock")."""

    # A command's expires_at is judged by the wall clock only while the kernel reports it
    # synchronised (NTP); true judges it anyway, for a gateway with a trusted RTC.
    trust_unsynchronised_clock: bool = False
