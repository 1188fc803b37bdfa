"""The gateway's configuration: one TOML file, validated by pydantic models.

Every model forbids unknown keys, because a misspelt key silently ignored is a shop that does not
behave as its integrator thinks. Secrets never sit in the TOML: the file names them by path
(``password_file``, ``secret_file``) and they are read when the daemon starts. ``load_config``
collects every problem at once, each located at its line, so one run of ``check-config`` shows
the integrator everything to fix.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Final, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from gateway.errors import ConfigError, Problem
from gateway.tomlmap import TomlMap

NAME_PATTERN: Final = r"^[a-z0-9][a-z0-9-]{0,63}$"
DEVICE_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
DeviceId = Annotated[str, Field(pattern=DEVICE_ID_PATTERN)]
ZoneId = Annotated[str, Field(pattern=DEVICE_ID_PATTERN)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SiteConfig(_Model):
    store: Name
    gateway: Name


class MqttConfig(_Model):
    url: str = "mqtt://127.0.0.1:1883"
    topic_prefix: str = "silentcommerce/v1"
    client_id: str | None = None  # default: silentgate-{store}-{gateway}
    username: str | None = None
    password_file: Path | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 30
    protocol: Literal["auto", "5", "3.1.1"] = "auto"  # auto: v5, falling back to 3.1.1
    # Events per P/events message; 0 publishes one event per P/event/{type} message.
    batch: Annotated[int, Field(ge=0, le=1000)] = 0
    inflight: Annotated[int, Field(ge=1, le=1000)] = 64  # unacknowledged QoS 1 publishes at once

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


class StorageConfig(_Model):
    path: Path = Path("/var/lib/silentgate/outbox.db")
    # FULL: a committed event survives power loss (an fsync per flush, ~1 per pipeline run).
    synchronous: Literal["full", "normal"] = "full"
    max_bytes: Annotated[int, Field(ge=1 << 20)] = 256 << 20


class PrivacyConfig(_Model):
    customer_ids: Literal["hmac-sha256", "raw", "omit"] = "hmac-sha256"
    secret_file: Path = Path("/etc/silentgate/secret")


class TagsConfig(_Model):
    customer_prefixes: list[str] = Field(default_factory=list)

    @field_validator("customer_prefixes")
    @classmethod
    def _check_hex(cls, prefixes: list[str]) -> list[str]:
        for p in prefixes:
            if not re.fullmatch(r"[0-9A-Fa-f]{1,62}", p):
                raise ValueError(f"{p!r} is not a hex prefix")
        return [p.upper() for p in prefixes]


class _SerialDevice(_Model):
    id: DeviceId
    port: Annotated[str, Field(min_length=1)]


Region = Literal["NA", "NA2", "NA3", "EU", "EU3", "IN", "JP", "PRC", "KR2", "AU", "NZ", "OPEN"]


class ThingMagicReader(_SerialDevice):
    driver: Literal["thingmagic"]
    baudrate: int = 115200
    antennas: dict[Annotated[int, Field(ge=1, le=16)], ZoneId] = Field(min_length=1)
    region: Region = "EU3"
    read_power_dbm: Annotated[float, Field(ge=0, le=31.5)] = 27.0
    search_timeout_ms: Annotated[int, Field(ge=50, le=10000)] = 1000

    def zones(self) -> dict[int, str]:
        return dict(self.antennas)


class _SingleZoneReader(_SerialDevice):
    zone: ZoneId

    def zones(self) -> dict[int, str]:
        return {0: self.zone}


class Em4100Reader(_SingleZoneReader):
    driver: Literal["em4100"]
    baudrate: int = 9600


class Pn532Reader(_SingleZoneReader):
    driver: Literal["pn532"]
    baudrate: int = 115200
    poll_interval_s: Annotated[float, Field(gt=0, le=10)] = 0.2


ReaderConfig = Annotated[
    ThingMagicReader | Em4100Reader | Pn532Reader, Field(discriminator="driver")
]


class ModbusScaleSensor(_SerialDevice):
    driver: Literal["modbus-scale"]
    zone: ZoneId
    baudrate: int = 9600
    unit: Annotated[int, Field(ge=1, le=247)] = 1
    register_map: Literal["generic", "laumas", "flintec"] = "generic"
    channel: Annotated[int, Field(ge=1, le=16)] = 1
    poll_hz: Annotated[float, Field(gt=0, le=50)] = 10.0


SensorConfig = Annotated[ModbusScaleSensor, Field(discriminator="driver")]


class OutputConfig(_Model):
    id: DeviceId
    driver: Literal["relay", "serial-display", "openepaperlink"]
    port: str | None = None  # serial port, or the access point's base URL for openepaperlink
    baudrate: int | None = None


class ZoneConfig(_Model):
    id: ZoneId
    dwell_s: Annotated[float, Field(gt=0, le=86400)] = 5.0


class Config(_Model):
    site: SiteConfig
    mqtt: MqttConfig
    storage: StorageConfig = StorageConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    tags: TagsConfig = TagsConfig()
    readers: list[ReaderConfig] = Field(default_factory=list)
    sensors: list[SensorConfig] = Field(default_factory=list)
    zones: list[ZoneConfig] = Field(default_factory=list)
    outputs: list[OutputConfig] = Field(default_factory=list)
    rules: list[dict[str, Any]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_whole(self) -> Config:
        if not self.readers and not self.sensors:
            raise ValueError("at least one [[readers]] or [[sensors]] entry is required")
        if self.rules:
            raise ValueError("[[rules]] are not supported by this version yet")
        seen: set[str] = set()
        for device in (*self.readers, *self.sensors, *self.outputs):
            if device.id in seen:
                raise ValueError(f"device id {device.id!r} is used twice")
            seen.add(device.id)
        zone_ids = [z.id for z in self.zones]
        if len(zone_ids) != len(set(zone_ids)):
            raise ValueError("a zone id is declared twice")
        return self

    def all_zones(self) -> list[ZoneConfig]:
        """Declared zones, then zones named by devices but not declared, with defaults."""
        zones = list(self.zones)
        known = {z.id for z in zones}
        named = [z for r in self.readers for z in r.zones().values()]
        named += [s.zone for s in self.sensors]
        for zone in named:
            if zone not in known:
                known.add(zone)
                zones.append(ZoneConfig(id=zone))
        return zones

    @property
    def client_id(self) -> str:
        return self.mqtt.client_id or f"silentgate-{self.site.store}-{self.site.gateway}"


def load_config(path: str | Path, *, check_files: bool = True) -> Config:
    """Read and validate a config file, or raise ConfigError listing every problem."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem(name, 0, "-", f"cannot read the file: {exc}")]) from exc
    return parse_config(text, name, check_files=check_files)


def parse_config(text: str, name: str = "<config>", *, check_files: bool = True) -> Config:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([_syntax_problem(name, exc)]) from exc
    where = TomlMap(text)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        problems = [_validation_problem(name, where, err) for err in exc.errors()]
        raise ConfigError(sorted(problems, key=lambda p: p.line)) from exc
    if check_files:
        problems = _file_problems(config, name, where)
        if problems:
            raise ConfigError(problems)
    return config


def _syntax_problem(name: str, exc: tomllib.TOMLDecodeError) -> Problem:
    m = re.search(r"\(at line (\d+), column \d+\)", str(exc))
    line = int(m.group(1)) if m else 1
    message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
    return Problem(name, line, "toml", f"syntax error: {message}")


_UNION_TAGS: Final = {"thingmagic", "em4100", "pn532", "modbus-scale"}


def _validation_problem(name: str, where: TomlMap, err: Any) -> Problem:
    loc = tuple(part for part in err["loc"] if part not in _UNION_TAGS and part != "[key]")
    message = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
        loc = (*loc, err["ctx"]["discriminator"].strip("'"))
        expected = err["ctx"]["expected_tags"].replace("'", "")
        message = f"unknown or missing driver (expected one of: {expected})"
    path = ".".join(str(p) for p in loc) or "(top level)"
    if err["type"] == "extra_forbidden":
        message = "unknown key"
    elif err["type"] == "string_pattern_mismatch":
        message = f"{err['input']!r} must match {err['ctx']['pattern']}"
    return Problem(name, where.line_of(loc), path, message)


def _file_problems(config: Config, name: str, where: TomlMap) -> list[Problem]:
    wanted: list[tuple[tuple[str, ...], Path | None]] = [
        (("mqtt", "password_file"), config.mqtt.password_file),
        (("mqtt", "ca_file"), config.mqtt.ca_file),
        (("mqtt", "cert_file"), config.mqtt.cert_file),
        (("mqtt", "key_file"), config.mqtt.key_file),
    ]
    if config.privacy.customer_ids == "hmac-sha256":
        wanted.append((("privacy", "secret_file"), config.privacy.secret_file))
    problems = []
    for loc, file in wanted:
        if file is not None and not file.is_file():
            hint = ""
            if loc == ("privacy", "secret_file"):
                hint = " (create one: head -c 32 /dev/urandom | base64 > FILE)"
            problems.append(
                Problem(name, where.line_of(loc), ".".join(loc), f"no such file: {file}{hint}")
            )
    return problems
