"""Waiting in async tests: a coroutine running beside the test, and a condition coming true."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any


@contextlib.asynccontextmanager
async def background(
    coro: Coroutine[Any, Any, None], *, also: tuple[type[BaseException], ...] = ()
) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``coro`` while the block runs; cancel it after. ``also``: exceptions its ending may
    raise besides the cancellation (a device session's own errors)."""
    task = asyncio.create_task(coro)
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, *also):
            await task


async def until(
    condition: Callable[[], object], timeout: float = 10.0, interval: float = 0.01
) -> None:
    """Poll ``condition`` until it is true; TimeoutError after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(interval)
