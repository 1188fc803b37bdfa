"""Seeded, structure-aware fuzzing of the gateway's MQTT boundary, in-process (no broker).

    .venv/bin/python -m bench.fuzz_mqtt --n 1000000
    .venv/bin/python -m bench.fuzz_mqtt --n 20000 --seed 7

Each input is a topic under ``P/cmd/+`` or ``P/content/#`` and a payload, handed to the
uplink's ``Inbound.deliver``: the inbound queue's lanes, then the same handlers its consumer
calls (``CommandChannel.receive``, ``ContentSubscription.receive``), with a real SQLite ledger and
outputs that record what they are asked. Payloads are valid commands and content mutated the
ways a hostile or broken sender would: wrong types, unknown and missing fields, strings with
control and bidirectional characters, numbers of hundreds of digits, inf and nan, nesting,
duplicate keys, sizes around the limits, invalid UTF-8, odd expiry times; topics with unknown,
empty, long and unicode output ids or content keys; and random bytes.

Two things must hold for every input: no exception escapes, and none is caught by the uplink's
per-message containment either (``handler_error``, a bug met by a message); and a command input
gets exactly one result (executed, failed or refused: the router's counts grow by one). Prints
inputs/s and each violation with its seed and input number; exit 1 if there was one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt

from gateway.commands import AnyCommand, CommandRouter, OutputKind
from gateway.config import parse_config
from gateway.outbox import Outbox
from gateway.rules.content import ContentStore
from gateway.uplink.session import Uplink
from gateway.uplink.status import StatusBoard

BASE = "silentcommerce/v1/store-042/gw-fuzz"
RESULT_WAIT_S = 5.0  # for one accepted command's result; far more than a claim takes
OUTPUTS: dict[str, OutputKind] = {
    "relay-1": "relay",
    "shelf-display": "serial-display",
    "labels": "openepaperlink",
}
AWKWARD = [
    "\x00", "\x1b[2J", "\n", "\x7f", "\x85", "\u202e", "\u2066", "\u200f", "\u061c", "\ud800",
    "é", "👋", "\U0001d518", "\ufeff", "'", '"', "\\", "{", "[", "%s", "{zone}",
]  # fmt: skip
NUMBERS = [
    b"0", b"-1", b"1.5", b"1e400", b"-1e400", b"NaN", b"Infinity", b"1" + b"0" * 400,
    b"1" * 20, b"9007199254740993", b"1e-400", b"-0", b"0.0000001", b"86400", b"86401",
]  # fmt: skip
EXPIRIES = [
    "2026-01-01T00:00:00Z", "2099-01-01T00:00:00Z", "2026-11-18T00:00:00", "not a time",
    "2026-13-45T99:99:99Z", "", "2026-11-18T10:00:00+14:00", "9999-12-31T23:59:59Z",
]  # fmt: skip


class Recorder:
    def __init__(self, kind: OutputKind) -> None:
        self.kind: OutputKind = kind
        self.done = 0

    async def execute(self, command: AnyCommand) -> None:
        self.done += 1


def valid_command(rng: random.Random, kind: OutputKind, n: int) -> dict[str, Any]:
    base: dict[str, Any] = {"command_id": f"f-{n}"}
    if rng.random() < 0.3:
        base["expires_at"] = rng.choice(EXPIRIES)
    if kind == "relay":
        return {**base, "action": "switch", "channel": rng.randint(0, 17), "on": rng.random() < 0.5}
    if kind == "serial-display":
        action = rng.choice(["show", "clear", "brightness"])
        if action == "show":
            return {**base, "action": action, "line": rng.randint(0, 9), "text": text(rng, 44)}
        if action == "brightness":
            return {**base, "action": action, "percent": rng.randint(-5, 105)}
        return {**base, "action": action}
    lines = [text(rng, 66) for _ in range(rng.randint(0, 9))]
    return {**base, "action": "show", "mac": "0000021F8A3C", "lines": lines}


def text(rng: random.Random, limit: int) -> str:
    parts = [rng.choice(["Käse", "2.49", "x" * rng.randint(0, limit), *AWKWARD[:3]])]
    if rng.random() < 0.3:
        parts.append(rng.choice(AWKWARD))
    return "".join(parts)


def mutate(rng: random.Random, obj: dict[str, Any]) -> bytes:
    """``obj`` as JSON, changed one of the ways a hostile or broken sender would change it."""
    choice = rng.randrange(12)
    keys = list(obj)
    if choice == 0 and keys:
        obj[rng.choice(keys)] = rng.choice(["yes", 1, 1.0, None, [], {}, "1", True])
    elif choice == 1:
        obj[rng.choice(["colour", "durations", "ON", "", "command_id "])] = 1
    elif choice == 2 and keys:
        del obj[rng.choice(keys)]
    elif choice == 3 and keys:
        obj[rng.choice(keys)] = rng.choice(AWKWARD) * rng.randint(1, 3)
    elif choice == 4:
        key = rng.choice(keys or ["x"])
        body = json.dumps(obj).encode()[:-1] + b', "%s": ' % key.encode() + rng.choice(NUMBERS)
        return body + b"}"
    elif choice == 5:
        depth = rng.choice([2, 3, 4, 50, 1000, 5000])
        return b"[" * depth + json.dumps(obj).encode() + b"]" * rng.choice([0, depth])
    elif choice == 6:
        body = json.dumps(obj).encode()
        return body[: rng.randrange(len(body) + 1)]
    elif choice == 7:
        obj["pad"] = "x" * rng.choice([3900, 4096, 4200, 70_000])
    elif choice == 8:
        body = json.dumps(obj).encode()
        return body[:-1] + b', "command_id": "dup"}'  # a key twice
    elif choice == 9:
        return _encoded(obj).replace(b"a", b"\xff", 1)
    elif choice == 10:
        obj["duration_s"] = rng.choice([0, -1, 5, 5.5, 86400, 86401, "5", 1e300])
    return _encoded(obj)


def _encoded(obj: dict[str, Any]) -> bytes:
    """UTF-8, with lone surrogates written as they are (invalid UTF-8 on the wire)."""
    return json.dumps(obj, ensure_ascii=False).encode(errors="surrogatepass")


def output_id(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.75:
        return rng.choice(list(OUTPUTS))
    # Topics a broker can deliver: no wildcards, at most 65,535 bytes in all.
    long = "x" * rng.choice([64, 65, 1000, 65_400])
    return rng.choice(["", "no-such", long, "é", "\u202e", "relay-1 ", "RELAY-1", "$x"])


def content(rng: random.Random) -> tuple[str, bytes]:
    kind = rng.choice(["zone", "gtin", "offer", "price", ""])
    key = rng.choice(["shelf-a", "04006381333931", "ab" * 32, "", "a/b", "k" * 200, "é"])
    entry: dict[str, Any] = {
        rng.choice(["title", "price", "text", "name"]): rng.choice(["Fresh bread", 2.49, 3])
        for _ in range(rng.randint(0, 4))
    }
    if rng.random() < 0.5:
        entry[rng.choice(["id", "Title", "x" * 40, "price"])] = rng.choice(
            [True, None, [1], {"a": 1}, "x" * 300, text(rng, 260)]
        )
    if rng.random() < 0.2:
        entry["expires_at"] = rng.choice(EXPIRIES)
    if rng.random() < 0.05:
        return f"{BASE}/content/{kind}/{key}", b""  # a retained message cleared
    payload = _encoded(entry) if rng.random() < 0.3 else mutate(rng, entry)
    return f"{BASE}/content/{kind}/{key}", payload


def make_input(rng: random.Random, n: int) -> tuple[str, bytes, bool]:
    """(topic, payload, is a command)."""
    roll = rng.random()
    if roll < 0.3:
        topic, payload = content(rng)
        return topic, payload, False
    target = output_id(rng)
    if roll < 0.35:
        payload = rng.randbytes(rng.randint(0, 300))
    else:
        command = valid_command(rng, OUTPUTS.get(target, rng.choice(list(OUTPUTS.values()))), n)
        payload = json.dumps(command).encode() if rng.random() < 0.2 else mutate(rng, command)
    return f"{BASE}/cmd/{target}", payload, True


@dataclass
class Harness:
    uplink: Uplink
    router: CommandRouter
    recorders: dict[str, Recorder]
    violations: list[str] = field(default_factory=list)

    def results(self) -> int:
        return self.router.executed + self.router.failed + self.router.refused

    def handler_errors(self) -> int:
        return sum(r.get("handler_error", 0) for r in self.uplink.inbound.rejections().values())

    async def feed(self, number: int, topic: str, payload: bytes, is_command: bool) -> None:
        before, errors = self.results(), self.handler_errors()
        message = aiomqtt.Message(topic, payload, qos=1, retain=False, mid=1, properties=None)
        try:
            self.uplink.inbound.deliver(message)
        except Exception as exc:  # the point of fuzzing: anything escaping is a finding
            self.violation(number, topic, payload, f"raised {exc!r}")
            return
        if is_command:
            # An accepted command runs in the channel's task group and claims its id on the
            # outbox's writer thread: wait (bounded) for its one result.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(RESULT_WAIT_S):
                    while self.results() == before:
                        await asyncio.sleep(0)
            for _ in range(3):  # a second result, if there were one, would come as soon
                await asyncio.sleep(0)
            if self.results() - before != 1:
                self.violation(number, topic, payload, f"{self.results() - before} results")
        if self.handler_errors() != errors:
            self.violation(number, topic, payload, "a handler raised (handler_error)")

    def violation(self, number: int, topic: str, payload: bytes, what: str) -> None:
        self.violations.append(f"input {number}: {what}: {topic[:120]!r} {payload[:200]!r}")


def make_harness(tmp: Path) -> Harness:
    config = parse_config(
        f'[site]\nstore = "store-042"\ngateway = "gw-fuzz"\n[mqtt]\nurl = "mqtt://127.0.0.1:1"\n'
        f'[storage]\npath = "{tmp / "outbox.db"}"\nsynchronous = "normal"\n'
        '[privacy]\ncustomer_ids = "raw"\n'
        '[[readers]]\nid = "door"\ndriver = "em4100"\nport = "/dev/null"\nzone = "entrance"\n'
    )
    outbox = Outbox.from_config(config.storage)
    recorders = {name: Recorder(kind) for name, kind in OUTPUTS.items()}
    router = CommandRouter.on_outbox(outbox, recorders, trust_unsynchronised_clock=True)
    store = ContentStore(tmp / "content.json")
    uplink = Uplink(config, outbox, StatusBoard(outbox.backlog), router, store)
    return Harness(uplink, router, recorders)


async def fuzz(
    inputs: int, seed: int, tmp: Path, progress: Callable[[int], None] | None = None
) -> Harness:
    harness = make_harness(tmp)
    rng = random.Random(seed)
    channel = harness.uplink.inbound.commands
    assert channel is not None
    runner = asyncio.create_task(channel.run())
    try:
        for number in range(inputs):
            await harness.feed(number, *make_input(rng, number))
            if progress is not None and number % 100_000 == 99_999:
                progress(number + 1)
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
    return harness


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="inputs")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    started = time.perf_counter()

    def progress(done: int) -> None:
        print(
            f"{done:,} inputs, {done / (time.perf_counter() - started):,.0f} inputs/s", flush=True
        )

    # Log lines are formatted (a reason quoting hostile text must format) and thrown away.
    with open(os.devnull, "w") as devnull, tempfile.TemporaryDirectory() as tmp:
        logging.basicConfig(stream=devnull, level=logging.INFO, force=True)
        harness = asyncio.run(fuzz(args.n, args.seed, Path(tmp), progress))
    elapsed = time.perf_counter() - started
    router = harness.router
    print(
        f"{args.n:,} inputs in {elapsed:.1f} s ({args.n / elapsed:,.0f} inputs/s), seed "
        f"{args.seed}: executed {router.executed:,}, refused {router.refused:,} "
        f"{dict(router.refused_by.most_common())}, content applied "
        f"{harness.uplink.inbound.figures().get('content')}; "
        f"{len(harness.violations)} violations"
    )
    for line in itertools.islice(harness.violations, 20):
        print(line)
    return 1 if harness.violations else 0


if __name__ == "__main__":
    sys.exit(main())
