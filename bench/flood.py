"""A flood of bad commands at a gateway, from a process of its own so the flood's cost is not the
measuring process's: ``rate`` messages a second on ``P/cmd/...``, QoS 1, for ``seconds``.

    .venv/bin/python -m bench.flood --port 1883 --base silentcommerce/v1/s/gw --output relay-1

The messages cycle through ways a command is refused: malformed JSON, over 4 KiB, nested 1,000
deep, a number of 400 digits, expired, for an output that is not configured, ``"on": "yes"``,
and (with ``--replay``) the command_id of a command already executed. Sent in
10 ms ticks by paho's network thread; prints one JSON line: messages sent, acknowledged by the
broker, and the rate achieved.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections.abc import Iterator

import paho.mqtt.client as mqtt

TICK_S = 0.01
INFLIGHT = 100


def bad_commands(base: str, output: str, replayed: str | None) -> Iterator[tuple[str, bytes]]:
    good = {"action": "switch", "channel": 1, "on": True}
    cmd = f"{base}/cmd/{output}"
    for i in itertools.count():
        yield cmd, b'{"command_id": "m-%d", "action": ' % i
        yield cmd, json.dumps({**good, "command_id": f"o-{i}", "pad": "x" * 4200}).encode()
        yield cmd, b"[" * 1000
        yield cmd, b'{"command_id": "n-%d", "channel": 1%s}' % (i, b"0" * 400)
        late = {**good, "command_id": f"e-{i}", "expires_at": "2026-01-01T00:00:00Z"}
        yield cmd, json.dumps(late).encode()
        unknown = {**good, "command_id": f"u-{i}"}
        yield f"{base}/cmd/no-such-{i % 1000}", json.dumps(unknown).encode()
        yield cmd, json.dumps({**good, "command_id": f"y-{i}", "on": "yes"}).encode()
        if replayed is not None:
            yield cmd, json.dumps({**good, "command_id": replayed}).encode()


def flood(
    port: int, base: str, output: str, rate: float, seconds: float, replayed: str | None = None
) -> dict[str, float]:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-flood")
    acked = 0

    def on_publish(*_: object) -> None:
        nonlocal acked
        acked += 1

    client.on_publish = on_publish
    # A window, not 65,000: on each PUBACK paho walks the messages in flight to find the next
    # one queued, so a window as large as the backlog costs time quadratic in it once the broker
    # falls behind, and the flood never ends. 100 in flight still sends tens of thousands a second
    # to a local broker.
    client.max_inflight_messages_set(INFLIGHT)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    messages, sent, started = bad_commands(base, output, replayed), 0, time.monotonic()
    while (elapsed := time.monotonic() - started) < seconds:
        due = int(elapsed * rate) + 1
        for topic, payload in itertools.islice(messages, max(0, due - sent)):
            client.publish(topic, payload, qos=1)
            sent += 1
        time.sleep(TICK_S)
    duration = time.monotonic() - started
    time.sleep(1.0)  # the last PUBACKs
    client.loop_stop()
    client.disconnect()
    return {"sent": sent, "acked": acked, "seconds": round(duration, 2), "rate": sent / duration}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--base", required=True, help="the gateway's topic base P")
    parser.add_argument("--output", default="relay-1", help="a configured output id")
    parser.add_argument("--rate", type=float, default=5000.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--replay", metavar="COMMAND_ID", help="a command_id already executed")
    args = parser.parse_args()
    figures = flood(args.port, args.base, args.output, args.rate, args.seconds, args.replay)
    print(json.dumps(figures), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
