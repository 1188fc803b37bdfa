"""Long-running loops that must survive their own failures: device sessions and the uplink.

``supervised`` is where a long-running loop's failure is caught (the daemon's other broad
catches each end one input's or one action's failure: a command, a rule's action, a storage
write, a port read at a tick, the kernels' build). A device whose cable is pulled raises out of its
session; the supervisor reports it, waits a capped, jittered
backoff (so a shop full of readers does not retry in lockstep) and starts it again. Pure stages
are not supervised: a bug there should crash the daemon and let systemd restart it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

# Named, not __name__: the journal shows this name on every line, wherever the module lives.
log = logging.getLogger("gateway.supervise")


@dataclass(slots=True)
class Backoff:
    """Exponential backoff with equal jitter, capped: each wait is drawn from [ceiling/2,
    ceiling], the ceiling doubling from ``initial`` to ``cap``. Half the wait is kept so that a
    dead device or broker is never retried at once; the other half spreads a shop's retries."""

    initial: float = 0.5
    cap: float = 30.0
    factor: float = 2.0
    rng: random.Random = field(default_factory=random.Random)
    _attempt: int = 0

    def next(self) -> float:
        ceiling = min(self.cap, self.initial * self.factor**self._attempt)
        if ceiling < self.cap:  # beyond it the count would only overflow (2.0**1024, 8 h in)
            self._attempt += 1
        return self.rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self._attempt = 0


@dataclass(slots=True)
class _RepeatFilter:
    """Logs a repeating failure at attempts 1, 2, 4, 8, ... so a dead device cannot flood the
    journal, while a new kind of failure is always logged at once."""

    last: str = ""
    repeats: int = 0

    def should_log(self, message: str) -> bool:
        if message != self.last:
            self.last, self.repeats = message, 1
            return True
        self.repeats += 1
        return self.repeats & (self.repeats - 1) == 0


async def supervised(
    name: str,
    run: Callable[[], Awaitable[None]],
    *,
    on_failure: Callable[[BaseException], None] | None = None,
    backoff: Backoff | None = None,
    healthy_after_s: float = 30.0,
) -> None:
    """Run ``run()`` forever, restarting it with backoff whenever it fails or returns."""
    backoff = backoff or Backoff()
    repeats = _RepeatFilter()
    while True:
        started = time.monotonic()
        try:
            await run()
            message = "stopped"
        except Exception as exc:  # a loop's failure: see the module docstring
            message = f"{type(exc).__name__}: {exc}"
            if on_failure is not None:
                on_failure(exc)
        if time.monotonic() - started >= healthy_after_s:
            backoff.reset()
            repeats = _RepeatFilter()
        delay = backoff.next()
        if repeats.should_log(message):
            suffix = f" (failed {repeats.repeats} times)" if repeats.repeats > 1 else ""
            log.warning("%s: %s; retrying in %.1f s%s", name, message, delay, suffix)
        await asyncio.sleep(delay)
