"""``silentgate tail``: a central-side subscriber that prints what the gateways publish.

It accepts both event forms of docs/contract.md, "MQTT" (one event per ``P/event/{type}``
message, or a JSON array on ``P/events``) and the retained ``P/status``. Human output is one short
line per message; ``--json`` prints one JSON object per line: the event itself, or
``{"status": ..., "topic": ...}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import aiomqtt

Printer = Callable[[str, dict[str, Any]], None]


def decode_message(topic: str, payload: bytes) -> list[tuple[str, dict[str, Any]]]:
    """(kind, object) pairs: kind is "event" or "status"; batched events are unpacked."""
    try:
        body = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return []
    if topic.endswith("/status") and isinstance(body, dict):
        return [("status", body)]
    if isinstance(body, list):
        return [("event", e) for e in body if isinstance(e, dict)]
    if isinstance(body, dict) and "seq" in body:
        return [("event", body)]
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
    devices = " ".join(f"{k}={v}" for k, v in (status.get("devices") or {}).items())
    return f"{topic}: {status.get('state')} {devices}".rstrip()


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
    broker: str, topic_filter: str, on_message: Printer, ready: asyncio.Event | None = None
) -> None:
    parts = urlsplit(broker)
    port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
    async with aiomqtt.Client(parts.hostname or "127.0.0.1", port) as client:
        await client.subscribe(topic_filter, qos=1)
        if ready is not None:
            ready.set()
        async for message in client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else b""
            for kind, obj in decode_message(message.topic.value, payload):
                if kind == "status":
                    obj["_topic"] = message.topic.value
                on_message(kind, obj)


def run_tail(args: argparse.Namespace) -> int:
    printer = json_printer if args.json else human_printer
    topic_filter = f"{args.prefix}/{args.filter}"
    try:
        asyncio.run(subscribe(args.broker, topic_filter, printer))
    except KeyboardInterrupt:
        return 0
    except aiomqtt.MqttError as exc:
        print(f"silentgate tail: {args.broker}: {exc}", file=sys.stderr)
        return 1
    return 0
