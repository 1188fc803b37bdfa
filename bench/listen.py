"""A subscriber in its own process, for read -> event latency: the benchmark's writer threads
hold the GIL often enough to delay a receive timestamp taken in their process.

    python -m bench.listen BROKER_URL TOPIC_FILTER [--json]

Prints ``READY`` once subscribed, then ``<subject id> <time.monotonic()>`` for each
presence.enter (CLOCK_MONOTONIC is one clock for every process on the machine); with ``--json``,
every event instead, one JSON object per line, its receive time added as ``_received``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from gateway.tools.tail import subscribe


def main(url: str, topic: str, every: bool = False) -> None:
    def on_message(kind: str, obj: dict[str, Any]) -> None:
        if kind != "event":
            return
        if every:
            print(json.dumps({**obj, "_received": time.monotonic()}), flush=True)
        elif obj.get("type") == "presence.enter":
            print(obj.get("subject", {}).get("id"), time.monotonic(), flush=True)

    async def run() -> None:
        ready = asyncio.Event()
        task = asyncio.create_task(subscribe(url, topic, on_message, ready))
        await ready.wait()
        print("READY", flush=True)
        await task

    asyncio.run(run())


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], "--json" in sys.argv[3:])
