"""``[mqtt]``: how the gateway reaches its broker."""

from __future__ import annotations

import ssl
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from gateway.config.base import FilePath, Model
from gateway.errors import UplinkError
from gateway.wire.topics import EventTopics


class MqttConfig(Model):
    url: str = "mqtt://127.0.0.1:1883"
    topic_prefix: str = "silentcommerce/v1"
    client_id: str | None = None  # default: silentgate-{store}-{gateway}
    username: str | None = None
    password_file: FilePath | None = None
    ca_file: FilePath | None = None
    cert_file: FilePath | None = None
    key_file: FilePath | None = None
    keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 30
    protocol: Literal["auto", "5", "3.1.1"] = "auto"  # auto: v5, falling back to 3.1.1
    # Events per P/events message; 0 publishes one event per P/event/{type} message.
    batch: Annotated[int, Field(ge=0, le=1000)] = 0
    inflight: Annotated[int, Field(ge=1, le=1000)] = 64  # unacknowledged QoS 1 publishes at once
    # P/event/presence/enter (levels), or P/event/presence.enter (dotted: the form before
    # contract v2, for consumers still subscribed to it).
    event_topics: EventTopics = "levels"

    @field_validator("url")
    @classmethod
    def _check_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts"):
            raise ValueError("must start with mqtt:// or mqtts://")
        if not parts.hostname:
            raise ValueError("has no host")
        if parts.username or parts.password:
            raise ValueError("must not hold credentials: use mqtt.username and mqtt.password_file")
        _ = parts.port  # raises ValueError on a bad port
        return url

    @field_validator("topic_prefix")
    @classmethod
    def _check_prefix(cls, prefix: str) -> str:
        if not prefix or prefix.startswith("/") or prefix.endswith("/"):
            raise ValueError("must be non-empty, without leading or trailing '/'")
        if any(c in prefix for c in "+#$\0"):
            raise ValueError("must not contain MQTT wildcards, '$' or NUL")
        return prefix

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (8883 if parts.scheme == "mqtts" else 1883)

    @property
    def tls(self) -> bool:
        return urlsplit(self.url).scheme == "mqtts"


def read_password(mqtt: MqttConfig) -> str | None:
    """The content of ``password_file``, surrounding whitespace stripped; read at each connect so
    that a rotated password is picked up without a restart."""
    if mqtt.password_file is None:
        return None
    try:
        return mqtt.password_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise UplinkError(f"cannot read mqtt.password_file {mqtt.password_file}: {exc}") from exc


def tls_context(mqtt: MqttConfig) -> ssl.SSLContext | None:
    """For ``mqtts://``: the CA file (else the system store) and the client certificate."""
    if not mqtt.tls:
        return None
    try:
        context = ssl.create_default_context(cafile=mqtt.ca_file)
        if mqtt.cert_file is not None:
            context.load_cert_chain(mqtt.cert_file, mqtt.key_file)
    except (OSError, ssl.SSLError) as exc:
        raise UplinkError(f"cannot set up TLS for {mqtt.url}: {exc}") from exc
    return context
