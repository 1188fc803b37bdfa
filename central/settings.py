"""What ``silentgate central run`` takes: the command line's broker, database and group, and
an optional TOML file (``--config``) with a ``[central]`` table for the rest (docs/consumers.md).

The connection keys (``username``, ``password_file``, ``ca_file``, ``cert_file``, ``key_file``)
mean what they mean in the gateway's ``[mqtt]`` table: ``Settings.mqtt()`` is that table, and the
consumer's client is built by ``gateway.uplink.brokerclient`` as the daemon's tools build theirs.
"""

from __future__ import annotations

import socket
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Final

from pydantic import ValidationError

from central.store import StoreError
from gateway.config.mqtt import MqttConfig, read_password, tls_context
from gateway.errors import UplinkError

MAX_CONFIG_BYTES: Final = 64 * 1024


class SettingsError(StoreError):
    """A config file or broker URL the consumer cannot use."""


@dataclass(frozen=True, slots=True)
class Settings:
    broker: str = "mqtt://127.0.0.1:1883"
    db: str = "sqlite:///central.db"
    group: str = "central"
    topic_prefix: str = "silentcommerce/v1"
    # Fixed per instance, so that a restarted consumer resumes its session (and the messages
    # the broker queued for it); two running instances must never share one.
    client_id: str = ""
    session_expiry_s: int = 7 * 24 * 3600
    receive_maximum: int = 1000  # messages the broker may send before the first is acknowledged
    max_batch_messages: int = 1000  # messages per database transaction
    grace_s: float = 60.0  # a seq gap younger than this is not yet loss
    check_s: float = 5.0  # how often the loss watch looks
    username: str = ""
    password_file: str = ""
    ca_file: str = ""  # mqtts://: the CA that signed the broker's certificate (else the system's)
    cert_file: str = ""  # a client certificate, for a broker that asks for one
    key_file: str = ""  # its key, when not in cert_file

    def mqtt(self) -> MqttConfig:
        """The broker connection as the gateway's ``[mqtt]`` table; raises ValidationError for a
        bad URL."""
        return MqttConfig(
            url=self.broker,
            username=self.username or None,
            password_file=self.password_file or None,
            ca_file=self.ca_file or None,
            cert_file=self.cert_file or None,
            key_file=self.key_file or None,
            protocol="5",  # shared subscriptions, session expiry and receive maximum are v5's
        )

    def identifier(self) -> str:
        return self.client_id or f"silentgate-central-{self.group}-{socket.gethostname()}"


def load(broker: str, db: str, group: str | None, config: Path | None) -> Settings:
    # host:port as the gateway's tools take it (gateway.uplink.brokerclient.broker_url)
    settings = Settings(broker=broker if "://" in broker else f"mqtt://{broker}", db=db)
    if config is not None:
        settings = _from_file(settings, config)
    if group is not None:
        settings = replace(settings, group=group)
    return _checked(settings)


def _from_file(base: Settings, path: Path) -> Settings:
    try:
        with path.open("rb") as file:
            data = file.read(MAX_CONFIG_BYTES + 1)
        if len(data) > MAX_CONFIG_BYTES:
            raise SettingsError(f"{path}: larger than {MAX_CONFIG_BYTES} bytes")
        table = tomllib.loads(data.decode()).get("central", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"{path}: {exc}") from exc
    known = {f.name: type(getattr(base, f.name)) for f in fields(base)}
    changes: dict[str, object] = {}
    for key, value in table.items():
        kind = known.get(key)
        if kind is None or key in ("broker", "db"):
            raise SettingsError(f"{path}: [central] {key}: not a setting")
        given = value
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            given = float(value)
        if type(given) is not kind:
            raise SettingsError(f"{path}: [central] {key}: expected {kind.__name__}")
        changes[key] = given
    return replace(base, **changes)  # type: ignore[arg-type]


def _checked(s: Settings) -> Settings:
    for key in ("password_file", "ca_file", "cert_file", "key_file"):
        if (path := getattr(s, key)) and not Path(path).is_file():
            raise SettingsError(f"[central] {key}: {path} is not a file")
    try:
        mqtt = s.mqtt()
        # Once at start, so that a missing CA or password file is a usage error (exit 2) and
        # not a retry loop; each connect reads them again (a rotated password is picked up).
        read_password(mqtt)
        tls_context(mqtt)
    except UplinkError as exc:
        raise SettingsError(str(exc)) from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {str(e['msg']).removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise SettingsError(
            f"broker {s.broker[:60]!r} (host:port, mqtt://... or mqtts://...): {problems}"
        ) from None
    if not s.group or any(c in s.group for c in "/+#"):
        raise SettingsError(f"group {s.group!r}: a name without / + #")
    if not 1 <= s.receive_maximum <= 65535 or s.max_batch_messages < 1:
        raise SettingsError("receive_maximum is 1-65535 and max_batch_messages at least 1")
    if s.grace_s <= 0 or s.check_s <= 0 or s.session_expiry_s < 0:
        raise SettingsError("grace_s and check_s are positive, session_expiry_s not negative")
    return s
