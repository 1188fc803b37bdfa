"""The pages watching live: server-sent events, one snapshot a second, bounded in every way.

At most ``MAX_WATCHERS`` pages at once (the next is refused with 503). While any is connected,
one task makes a snapshot a second (one per distinct tuning antenna the pages ask for, so at
most one per page) and offers it to each page's queue of ``QUEUE`` messages; a page whose queue
is full has stopped reading and is dropped (its browser reconnects when it can). Each tick also
re-arms the reads' ring for ``ARM_S``, so it stops filling within seconds of the last page
leaving. With no page connected the task does not exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Final

from gateway.web.view import DaemonView

log = logging.getLogger(__name__)

MAX_WATCHERS: Final = 4
QUEUE: Final = 2  # snapshots waiting for one page; more means it stopped reading
INTERVAL_S: Final = 1.0
ARM_S: Final = 5.0


class Watcher:
    def __init__(self, tuning: str | None) -> None:
        self.tuning = tuning
        self.queue: asyncio.Queue[str] = asyncio.Queue(QUEUE)
        self.dropped = asyncio.Event()  # too slow, or the server is stopping


class Watchers:
    def __init__(self, view: DaemonView) -> None:
        self._view = view
        self._watchers: set[Watcher] = set()
        self._task: asyncio.Task[None] | None = None
        self.dropped_slow = 0

    def __len__(self) -> int:
        return len(self._watchers)

    def join(self, tuning: str | None) -> Watcher | None:
        """A new page, or None when ``MAX_WATCHERS`` are already connected."""
        if len(self._watchers) >= MAX_WATCHERS:
            return None
        watcher = Watcher(tuning)
        self._watchers.add(watcher)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._broadcast())
        return watcher

    def leave(self, watcher: Watcher) -> None:
        self._watchers.discard(watcher)
        if not self._watchers and self._task is not None:
            self._task.cancel()
            self._task = None

    def close(self) -> None:
        """Every page is let go (the server is stopping)."""
        for watcher in self._watchers:
            watcher.dropped.set()
            with contextlib.suppress(asyncio.QueueFull):  # full: it wakes up anyway
                watcher.queue.put_nowait("")  # wakes a page's handler waiting for the next

    async def _broadcast(self) -> None:
        loop = asyncio.get_running_loop()
        while self._watchers:
            started = loop.time()
            self._view.ring.arm(self._view.now() + ARM_S)
            messages: dict[str | None, str] = {}
            for watcher in list(self._watchers):
                if watcher.tuning not in messages:
                    snapshot = self._view.snapshot(watcher.tuning)
                    messages[watcher.tuning] = json.dumps(snapshot, separators=(",", ":"))
                try:
                    watcher.queue.put_nowait(messages[watcher.tuning])
                except asyncio.QueueFull:
                    self.dropped_slow += 1
                    log.info("live page: a watcher that stopped reading was dropped")
                    watcher.dropped.set()
                    self._watchers.discard(watcher)
            await asyncio.sleep(max(0.0, started + INTERVAL_S - loop.time()))
