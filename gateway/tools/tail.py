"""``silentgate tail``: a central-side subscriber that prints what the gateways publish.

It accepts both event forms of docs/contract.md, "MQTT" (one event per
``P/event/{family}/{name}`` message, or a JSON array on ``P/events``) and the retained
``P/status``. Human output is one short line per message; ``--json`` prints one JSON object per
line: the event itself, or
``{"status": ..., "topic": ...}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from typing import Any, Final

import aiomqtt

from gateway.config.mqtt import MqttConfig
from gateway.errors import ConfigError, UplinkError
from gateway.uplink.brokerclient import add_arguments as add_broker_arguments
from gateway.uplink.brokerclient import connected, tool_config
from gateway.wire.topics import filter_problem

DEFAULT_PREFIX: Final = "silentcommerce/v1"
Printer = Callable[[str, dict[str, Any]], None]


def decode_message(topic: str, payload: bytes) -> list[tuple[str, dict[str, Any]]]:
    """(kind, object) pairs: kind is "event" or "status"; batched events are unpacked."""
    try:
        body = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return []
    if isinstance(body, list):
        return [("event", e) for e in body if isinstance(e, dict)]
    # An event has a seq; P/event/device/status ends like P/status but is an event.
    if isinstance(body, dict) and "seq" in body:
        return [("event", body)]
    if topic.endswith("/status") and isinstance(body, dict):
        return [("status", body)]
    return []


def format_event(event: dict[str, Any]) -> str:
    subject = event.get("subject") or {}
    who = subject.get("id") or "-"
    if subject.get("gtin"):
        who = f"gtin {subject['gtin']} serial {subject.get('serial')}"
    if subject.get("kind") == "customer" and isinstance(who, str) and len(who) > 12:
        who = who[:12] + "…"
    extra = ""
    if "dwell_s" in event:
        extra = f" dwell {event['dwell_s']:.1f}s"
    elif event.get("rssi_dbm") is not None:
        extra = f" rssi {event['rssi_dbm']}"
    elif event.get("type") == "action.executed":
        outcome = "ok" if event.get("ok") else f"FAILED: {event.get('error')}"
        extra = (
            f" rule {event.get('rule')} -> {event.get('output')} {event.get('action')} {outcome}"
        )
    elif event.get("type") == "device.status":
        extra = f" {event.get('device')} {event.get('state')} {event.get('detail') or ''}"
    ts = str(event.get("ts", ""))[11:23]
    where = f"{event.get('store')}/{event.get('gateway')}"
    return (
        f"{ts} {where} #{event.get('seq')} {event.get('type', '?'):<15} "
        f"{event.get('zone') or '-':<10} {subject.get('kind', '')} {who}{extra}"
    ).rstrip()


def format_status(topic: str, status: dict[str, Any]) -> str:
    """One line: state, outbox backlog and the age of its oldest event, storage, devices and
    every alert; what an online status lacks (an offline one) is left out."""
    parts = [f"{topic}: {_shown(status.get('state'))}"]
    outbox = status.get("outbox")
    if isinstance(outbox, dict):
        age = outbox.get("oldest_age_s")
        oldest = f" (oldest {age:.1f} s)" if isinstance(age, int | float) and age > 0 else ""
        parts.append(f"backlog {_shown(outbox.get('backlog'))}{oldest}")
    storage = status.get("storage")
    if isinstance(storage, dict):
        reason = f" ({_shown(storage['reason'])})" if storage.get("reason") else ""
        parts.append(f"storage {_shown(storage.get('state'))}{reason}")
    devices = status.get("devices")
    if isinstance(devices, dict) and devices:
        parts.append(" ".join(f"{_shown(k)}={_shown(v)}" for k, v in devices.items()))
    alerts = status.get("alerts")
    if isinstance(alerts, list) and alerts:
        parts.append("alerts: " + "; ".join(_shown(a) for a in alerts))
    return " ".join(parts)


def _shown(value: object) -> str:
    """A value from the broker on one line of a terminal: control characters become spaces."""
    return "".join(c if c.isprintable() else " " for c in str(value))


def human_printer(kind: str, obj: dict[str, Any]) -> None:
    if kind == "status":
        print(format_status(str(obj.get("_topic", "")), obj), flush=True)
    else:
        print(format_event(obj), flush=True)


def json_printer(kind: str, obj: dict[str, Any]) -> None:
    if kind == "status":
        obj = {"status": {k: v for k, v in obj.items() if k != "_topic"}, "topic": obj["_topic"]}
    print(json.dumps(obj, separators=(",", ":")), flush=True)


async def subscribe(
    broker: str | MqttConfig,
    topic_filter: str,
    on_message: Printer,
    ready: asyncio.Event | None = None,
) -> None:
    """Print what arrives on ``topic_filter``; ``broker`` is a URL or a whole ``[mqtt]``."""
    async with connected(broker) as client:
        await client.subscribe(topic_filter, qos=1)
        if ready is not None:
            ready.set()
        async for message in client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else b""
            for kind, obj in decode_message(message.topic.value, payload):
                if kind == "status":
                    obj["_topic"] = message.topic.value
                on_message(kind, obj)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_broker_arguments(parser)
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument(
        "--prefix", default=None, type=_topic_filter,
        help=f"the gateways' topic_prefix (default: the config's, else {DEFAULT_PREFIX})",
    )  # fmt: skip
    parser.add_argument(
        "filter", nargs="?", default="+/+/#", metavar="FILTER", type=_topic_filter,
        help="MQTT topic filter below the prefix, e.g. store-042/+/event/presence/# "
        "(default: every store and gateway)",
    )  # fmt: skip


def _topic_filter(text: str) -> str:
    """A filter the broker would take, or a usage error that says why not."""
    problem = filter_problem(text)
    if problem is not None:
        raise argparse.ArgumentTypeError(f"{text!r} is not an MQTT topic filter: {problem}")
    return text


def run_tail(args: argparse.Namespace) -> int:
    try:
        config, mqtt = tool_config(args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    printer = json_printer if args.json else human_printer
    prefix = args.prefix or (DEFAULT_PREFIX if config is None else mqtt.topic_prefix)
    topic_filter = f"{prefix}/{args.filter}"
    try:
        asyncio.run(subscribe(mqtt, topic_filter, printer))
    except KeyboardInterrupt:
        return 0
    except (aiomqtt.MqttError, UplinkError) as exc:
        print(f"silentgate tail: {mqtt.url}: {exc}", file=sys.stderr)
        return 1
    return 0
