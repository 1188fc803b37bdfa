"""``silentgate send``: the central side of a command. Publishes one command to
``P/cmd/{output_id}`` and waits for its result on ``P/cmd/{output_id}/result``.

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
import ssl
import sys
import time
from typing import Any, Final
from urllib.parse import urlsplit

import aiomqtt

from gateway.events import format_ts
from gateway.ids import new_event_id

DEFAULT_TIMEOUT_S: Final = 15.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--broker", default="mqtt://127.0.0.1:1883", metavar="URL")
    parser.add_argument("--prefix", default="silentcommerce/v1", help="the gateway's topic_prefix")
    parser.add_argument("--store", required=True)
    parser.add_argument("--gateway", required=True)
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S")
    parser.add_argument("output", help="the output id, as in [[outputs]]")
    parser.add_argument(
        "command",
        help='the command as JSON, e.g. \'{"action": "switch", "channel": 1, "on": true}\'',
    )


def run(args: argparse.Namespace) -> int:
    try:
        command = prepare(args.command, args.timeout)
    except ValueError as exc:
        print(f"silentgate send: {exc}", file=sys.stderr)
        return 2
    base = f"{args.prefix}/{args.store}/{args.gateway}"
    try:
        result = asyncio.run(send_command(args.broker, base, args.output, command, args.timeout))
    except aiomqtt.MqttError as exc:
        print(f"silentgate send: {args.broker}: {exc}", file=sys.stderr)
        return 1
    if result is None:
        print(f"silentgate send: no result within {args.timeout:g} s", file=sys.stderr)
        return 1
    print(json.dumps(result, separators=(",", ":")))
    return 0 if result.get("ok") is True else 1


def prepare(text: str, timeout_s: float, now: float | None = None) -> dict[str, Any]:
    """The command object with a command_id and an expires_at, unless the caller set them."""
    try:
        command = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"the command is not JSON: {exc}") from None
    if not isinstance(command, dict):
        raise ValueError("the command must be a JSON object")
    command.setdefault("command_id", str(new_event_id()))
    expires = (time.time() if now is None else now) + timeout_s
    command.setdefault("expires_at", format_ts(expires))
    return command


async def send_command(
    broker: str, base: str, output_id: str, command: dict[str, Any], timeout_s: float
) -> dict[str, Any] | None:
    """Publish ``command`` and return its result object, or None after ``timeout_s``."""
    parts = urlsplit(broker)
    tls = ssl.create_default_context() if parts.scheme == "mqtts" else None
    port = parts.port or (8883 if tls else 1883)
    topic = f"{base}/cmd/{output_id}"
    async with aiomqtt.Client(parts.hostname or "127.0.0.1", port, tls_context=tls) as client:
        await client.subscribe(f"{topic}/result", qos=1)
        await client.publish(topic, json.dumps(command), qos=1)
        try:
            async with asyncio.timeout(timeout_s):
                return await _result_for(client, str(command["command_id"]))
        except TimeoutError:
            return None


async def _result_for(client: aiomqtt.Client, command_id: str) -> dict[str, Any]:
    # aiomqtt's message iterator ends only by raising MqttError when the connection drops.
    messages = aiter(client.messages)
    while True:
        message = await anext(messages)
        try:
            result = json.loads(message.payload)
        except (UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(result, dict) and result.get("command_id") == command_id:
            return result
