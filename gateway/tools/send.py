"""``silentgate send`` and ``silentgate request``: the central side of a command and of a
gateway request. ``send`` publishes one command to ``P/cmd/{output_id}`` and waits for its
result on ``P/cmd/{output_id}/result``; ``request`` publishes one request (``{"id": ...}`` and
its fields) to ``P/request/{name}`` and waits for the response with its id on
``P/response/{name}``.

The helper fills in what a sender should not have to think about: a fresh ``command_id`` (a
UUIDv7) unless one is given, and an ``expires_at`` as far ahead as it is willing to wait, so a
command that reaches the gateway after the sender gave up is refused rather than acted on late.
It subscribes to the result topic before publishing, so a fast answer cannot be missed.
Exit codes: 0 the command was executed, 1 refused, failed or no answer in time, 2 bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable
from typing import Any, Final

import aiomqtt

from gateway.config.mqtt import MqttConfig
from gateway.errors import ConfigError, UplinkError
from gateway.events.ids import new_event_id
from gateway.events.model import format_ts
from gateway.uplink.brokerclient import add_arguments as add_broker_arguments
from gateway.uplink.brokerclient import connected, tool_config
from gateway.uplink.requests import REQUESTS

DEFAULT_TIMEOUT_S: Final = 15.0
DEFAULT_PREFIX: Final = "silentcommerce/v1"


def _add_gateway_arguments(parser: argparse.ArgumentParser) -> None:
    add_broker_arguments(parser)
    parser.add_argument(
        "--prefix", default=None,
        help=f"the gateway's topic_prefix (default: the config's, else {DEFAULT_PREFIX})",
    )  # fmt: skip
    parser.add_argument("--store", help="the gateway's site.store (default: the config's)")
    parser.add_argument("--gateway", help="the gateway's site.gateway (default: the config's)")
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S",
        help="how long to wait for the answer, and the expiry sent "
        f"(default {DEFAULT_TIMEOUT_S:g})",
    )  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _add_gateway_arguments(parser)
    parser.add_argument("output", help="the output id, as in [[outputs]]")
    # Not "command": that is where argparse puts the subcommand's name.
    parser.add_argument(
        "payload",
        metavar="JSON",
        help='the command as JSON, e.g. \'{"action": "switch", "channel": 1, "on": true}\'',
    )


def add_request_arguments(parser: argparse.ArgumentParser) -> None:
    _add_gateway_arguments(parser)
    parser.add_argument("name", choices=sorted(REQUESTS), help="the request")
    parser.add_argument(
        "payload", metavar="JSON", nargs="?", default="{}",
        help='the request\'s fields as JSON, e.g. \'{"level": "DEBUG"}\' for log_level',
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """``silentgate send``: one command, its result."""
    return _ask(args, "send", "command_id", lambda base: (f"{base}/cmd/{args.output}",
                f"{base}/cmd/{args.output}/result"))  # fmt: skip


def run_request(args: argparse.Namespace) -> int:
    """``silentgate request``: one gateway request, its response."""
    return _ask(args, "request", "id", lambda base: (f"{base}/request/{args.name}",
                f"{base}/response/{args.name}"))  # fmt: skip


def _ask(
    args: argparse.Namespace, tool: str, id_key: str, topics: Callable[[str], tuple[str, str]]
) -> int:
    try:
        message = prepare(args.payload, args.timeout, id_key=id_key)
        base, mqtt = gateway_base(args)
    except ValueError as exc:
        print(f"silentgate {tool}: {exc}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    to, answers = topics(base)
    try:
        answer = asyncio.run(ask(mqtt, to, answers, message, id_key, args.timeout))
    except (aiomqtt.MqttError, UplinkError) as exc:
        print(f"silentgate {tool}: {mqtt.url}: {exc}", file=sys.stderr)
        return 1
    if answer is None:
        print(f"silentgate {tool}: no answer within {args.timeout:g} s", file=sys.stderr)
        return 1
    print(json.dumps(answer, separators=(",", ":")))
    return 0 if answer.get("ok") is True else 1


def gateway_base(args: argparse.Namespace) -> tuple[str, MqttConfig]:
    """``P`` of the gateway addressed (``--store``, ``--gateway``, ``--prefix``, else the config's)
    and the ``[mqtt]`` to reach it with. ValueError when no store or gateway is named."""
    config, mqtt = tool_config(args)
    store = args.store or (None if config is None else config.site.store)
    gateway = args.gateway or (None if config is None else config.site.gateway)
    if store is None or gateway is None:
        raise ValueError("name the gateway: --store and --gateway, or --config FILE")
    prefix = args.prefix or (DEFAULT_PREFIX if config is None else mqtt.topic_prefix)
    return f"{prefix}/{store}/{gateway}", mqtt


def prepare(
    text: str, timeout_s: float, now: float | None = None, *, id_key: str = "command_id"
) -> dict[str, Any]:
    """The message object with an id (``id_key``) and an expires_at, unless the caller set them."""
    what = "command" if id_key == "command_id" else "request"
    try:
        message = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"the {what} is not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise ValueError(f"the {what} must be a JSON object")
    message.setdefault(id_key, str(new_event_id()))
    expires = (time.time() if now is None else now) + timeout_s
    message.setdefault("expires_at", format_ts(expires))
    return message


async def send_command(
    broker: str | MqttConfig,
    base: str,
    output_id: str,
    command: dict[str, Any],
    timeout_s: float,
) -> dict[str, Any] | None:
    """Publish ``command`` and return its result object, or None after ``timeout_s``;
    ``broker`` is a URL or a whole ``[mqtt]``."""
    topic = f"{base}/cmd/{output_id}"
    return await ask(broker, topic, f"{topic}/result", command, "command_id", timeout_s)


async def ask(
    broker: str | MqttConfig,
    topic: str,
    answers: str,
    message: dict[str, Any],
    id_key: str,
    timeout_s: float,
) -> dict[str, Any] | None:
    """Publish ``message`` on ``topic`` and return the object on ``answers`` whose ``id_key``
    matches it, or None after ``timeout_s``. Subscribes first: a fast answer is not missed."""
    async with connected(broker) as client:
        await client.subscribe(answers, qos=1)
        await client.publish(topic, json.dumps(message), qos=1)
        try:
            async with asyncio.timeout(timeout_s):
                return await _answer_to(client, id_key, str(message[id_key]))
        except TimeoutError:
            return None


async def _answer_to(client: aiomqtt.Client, id_key: str, wanted: str) -> dict[str, Any]:
    # aiomqtt's message iterator ends only by raising MqttError when the connection drops.
    messages = aiter(client.messages)
    while True:
        message = await anext(messages)
        try:
            answer = json.loads(message.payload)
        except (UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(answer, dict) and answer.get(id_key) == wanted:
            return answer
