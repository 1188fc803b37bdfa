"""Every kernel the daemon calls from Python, called once with exactly the daemon's types.

The daemon runs ``warm_up_kernels`` before it reports READY, so that numba's JIT (when that is
how kernels run) compiles, or loads from its cache, before the first read rather than on it;
with a compiled build it only proves that the build takes the daemon's types.
``silentgate build-kernels`` runs it under a fresh JIT to learn which types each kernel is
compiled for: the kernels called from other kernels are typed as a side effect. A kernel the
daemon calls from Python belongs here; the build refuses to finish while any declared kernel
was never compiled by this warm-up.

At start the warm-up runs on a thread of its own while the event loop waits for it or for a
stop, whichever comes first: a JIT compile takes seconds here and minutes on a small board,
and SIGTERM must be answered meanwhile. The thread is a daemon thread: a stop does not wait for
the compile to finish. While it runs, systemd hears every few seconds that the start is still
making progress (``Notifier.starting``), which extends its start timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

from gateway.runtime.notify import Notifier

# Named, not __name__: the journal shows this name on every line, wherever the module lives.
log = logging.getLogger("gateway.kernels.warmup")

PROGRESS_S: Final = 5.0  # how often a slow warm-up says it is still working
EXTEND_S: Final = 30.0  # each time, so much more start time asked of systemd


def warm_up_kernels() -> None:
    # Imported here: importing the kernel modules is what chooses how kernels run.
    from gateway.devices.thingmagic import warm_up as warm_up_thingmagic  # noqa: PLC0415
    from gateway.stages.presence import PresenceStage, ZoneParams  # noqa: PLC0415

    PresenceStage([ZoneParams("warm-up")]).warm_up()
    warm_up_thingmagic()


async def warm_up_or_stop(
    stop: Callable[[], Awaitable[object]], notifier: Notifier,
    work: Callable[[], None] = warm_up_kernels, every_s: float = PROGRESS_S,
) -> bool:  # fmt: skip
    """Warm the kernels up (``work``) on a thread; True when done, False when ``stop`` came
    first. Every ``every_s`` meanwhile: a log line and a word to systemd."""
    done: asyncio.Future[Any] = _in_thread(work)
    stopped: asyncio.Future[Any] = asyncio.ensure_future(stop())
    started = time.monotonic()
    try:
        while True:
            finished, _ = await asyncio.wait(
                {done, stopped}, timeout=every_s, return_when=asyncio.FIRST_COMPLETED
            )
            if done in finished:
                done.result()  # a failed warm-up fails the start, with its own traceback
                return True
            if stopped in finished:
                return False
            seconds = time.monotonic() - started
            log.info("still compiling kernels after %.0f s (first start)", seconds)
            notifier.starting(f"compiling kernels, {seconds:.0f} s so far", EXTEND_S)
    finally:
        stopped.cancel()


def _in_thread(work: Callable[[], None]) -> asyncio.Future[None]:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()

    def settle(exc: BaseException | None) -> None:
        if future.done():
            return
        if exc is None:
            future.set_result(None)
        else:
            future.set_exception(exc)

    def run() -> None:
        outcome: BaseException | None = None
        try:
            work()
        except BaseException as exc:  # handed to the loop, which raises it in the daemon
            outcome = exc
        # After a stop the loop may be closed already: then nobody is waiting.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, outcome)

    threading.Thread(target=run, name="kernel-warm-up", daemon=True).start()
    return future
