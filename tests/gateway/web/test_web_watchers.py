"""The live page's watchers: at most four, a page that stops reading is dropped, and the
snapshots stop with the last page."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from gateway.web import sse
from gateway.web.sse import MAX_WATCHERS, QUEUE, Watchers
from gateway.web.view import DaemonView


class View:
    """The view's surface the watchers use: the ring's arming, the clock, snapshots."""

    def __init__(self) -> None:
        self.snapshots: list[str | None] = []
        self.armed_until = 0.0
        self.ring = self

    def arm(self, until: float) -> None:
        self.armed_until = until

    def now(self) -> float:
        return 100.0

    def snapshot(self, tuning: str | None = None) -> dict[str, Any]:
        self.snapshots.append(tuning)
        return {"n": len(self.snapshots)}


@pytest.fixture(autouse=True)
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sse, "INTERVAL_S", 0.01)


async def test_a_page_that_stops_reading_is_dropped_and_the_others_go_on() -> None:
    view = View()
    watchers = Watchers(cast(DaemonView, view))
    reading = watchers.join("door:1")
    stalled = watchers.join(None)
    assert reading is not None
    assert stalled is not None
    got: list[str] = []

    async def read() -> None:
        while True:
            got.append(await reading.queue.get())

    reader = asyncio.create_task(read())
    async with asyncio.timeout(5):
        await stalled.dropped.wait()
    assert watchers.dropped_slow == 1
    assert stalled.queue.qsize() == QUEUE  # it was offered what it could hold, then let go
    assert len(watchers) == 1
    async with asyncio.timeout(5):
        while len(got) < QUEUE + 3:
            await asyncio.sleep(0.01)
    reader.cancel()
    assert all(message.startswith('{"n":') for message in got)
    assert "door:1" in view.snapshots
    assert view.armed_until == 100.0 + sse.ARM_S
    watchers.leave(reading)
    await asyncio.sleep(0.05)
    count = len(view.snapshots)
    await asyncio.sleep(0.05)
    assert len(view.snapshots) == count  # no page: no snapshots


async def test_at_most_four_pages() -> None:
    watchers = Watchers(cast(DaemonView, View()))
    pages = [watchers.join(None) for _ in range(MAX_WATCHERS)]
    assert None not in pages
    assert watchers.join(None) is None
    first = pages[0]
    assert first is not None
    watchers.leave(first)
    assert watchers.join(None) is not None
    watchers.close()
