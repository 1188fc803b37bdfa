"""The MQTT client built from ``[mqtt]``, for the daemon's uplink and for the tools beside it.

``tail``, ``send``, ``request`` and ``doctor`` reach the broker exactly as the daemon does: the
same URL, TLS context (CA file, client certificate and key), username, password file and
protocol. A tool never uses the daemon's client id, which would take the daemon's session over;
it lets the broker's library draw one. ``--broker`` on a tool's command line takes
``host:port``, ``mqtt://host[:port]`` or ``mqtts://host[:port]`` and replaces only the URL.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

import aiomqtt
from pydantic import ValidationError

from gateway.config import Config, load_config
from gateway.config.mqtt import MqttConfig, read_password, tls_context

DEFAULT_BROKER: Final = "mqtt://127.0.0.1:1883"
CONNECT_TIMEOUT_S: Final = 10.0
BAD_PROTOCOL_CODES: Final = (1, 0x84)  # v3 CONNACK rc 1, v5 reason 0x84


def protocol_version(mqtt: MqttConfig) -> aiomqtt.ProtocolVersion:
    """The version tried first: 3.1.1 when configured so, else v5."""
    if mqtt.protocol == "3.1.1":
        return aiomqtt.ProtocolVersion.V311
    return aiomqtt.ProtocolVersion.V5


def client(
    mqtt: MqttConfig, protocol: aiomqtt.ProtocolVersion | None = None, **options: Any
) -> aiomqtt.Client:
    """An unconnected client for ``mqtt``; ``options`` go to ``aiomqtt.Client`` (a will, an
    identifier, a queue type). Raises UplinkError when a password or TLS file cannot be read."""
    options.setdefault("timeout", CONNECT_TIMEOUT_S)
    return aiomqtt.Client(
        mqtt.host,
        mqtt.port,
        username=mqtt.username,
        password=read_password(mqtt),
        protocol=protocol or protocol_version(mqtt),
        keepalive=mqtt.keepalive_s,
        tls_context=tls_context(mqtt),
        **options,
    )


@contextlib.asynccontextmanager
async def connected(broker: str | MqttConfig, **options: Any) -> AsyncIterator[aiomqtt.Client]:
    """A connected client; with ``protocol = "auto"`` a broker that refuses v5 is asked again
    with 3.1.1, as the uplink does."""
    mqtt = as_mqtt(broker)
    versions = [protocol_version(mqtt)]
    if mqtt.protocol == "auto":
        versions.append(aiomqtt.ProtocolVersion.V311)
    for attempt, version in enumerate(versions):
        each = client(mqtt, version, **options)
        try:
            await each.__aenter__()
        except aiomqtt.MqttCodeError as exc:
            code = getattr(exc.rc, "value", exc.rc)
            if attempt + 1 < len(versions) and code in BAD_PROTOCOL_CODES:
                continue
            raise
        try:
            yield each
        finally:
            await each.__aexit__(None, None, None)
        return


def broker_url(text: str) -> str:
    """``--broker``: ``host:port`` or an ``mqtt://`` / ``mqtts://`` URL, as a URL; anything else
    is a usage error (argparse prints it and exits 2)."""
    url = text if "://" in text else f"mqtt://{text}"
    try:
        MqttConfig(url=url)
    except ValidationError as exc:
        reason = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        raise argparse.ArgumentTypeError(
            f"{text!r}: {reason} (give host:port, mqtt://host[:port] or mqtts://host[:port])"
        ) from None
    return url


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config`` and ``--broker``, as every tool that talks to the broker takes them."""
    parser.add_argument(
        "--config", type=Path, default=None, metavar="FILE",
        help="connect as the daemon with this config does ([mqtt]: TLS, CA, client certificate, "
        "username, password file, protocol); its site and topic_prefix are the defaults",
    )  # fmt: skip
    parser.add_argument(
        "--broker", type=broker_url, default=None, metavar="URL",
        help=f"host:port, mqtt://host[:port] or mqtts://host[:port] (default: the config's "
        f"mqtt.url, else {DEFAULT_BROKER})",
    )  # fmt: skip


def tool_config(args: argparse.Namespace) -> tuple[Config | None, MqttConfig]:
    """The config named by ``--config`` (None without one) and the ``[mqtt]`` to connect with.
    Raises ConfigError for a config that ``check-config`` would refuse."""
    config = None if args.config is None else load_config(args.config, check_files=False)
    mqtt = MqttConfig() if config is None else config.mqtt
    if args.broker is not None:
        mqtt = mqtt.model_copy(update={"url": args.broker})
    return config, mqtt


def as_mqtt(broker: str | MqttConfig) -> MqttConfig:
    """A bare URL (tests, the demo, benches) as a plain ``[mqtt]`` section."""
    return broker if isinstance(broker, MqttConfig) else MqttConfig(url=broker)
