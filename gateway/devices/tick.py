"""The pipeline's tick: streaming ports read once per tick, not once per chunk that arrives.

A reader that streams hands the kernel a USB packet every few milliseconds, and waking the event
loop for each costs more than decoding it (docs/benchmarks.md: tens of microseconds a wakeup on
the bench machine, a Pi several times that). Pausing the session after each chunk does not help:
an asyncio transport keeps its file descriptor in the selector and wakes the loop for every chunk
all the same. So a streaming port leaves the selector, and every ``tick_s`` the pipeline reads all
such ports in one wakeup (``poll``), right before it runs on what they brought.

A port is in one of two modes:

* **parked**: its descriptor is in the selector. Bytes wake the loop and are read and handed
  over at once. If they held reads for the pipeline, the port starts ticking; keep-alives and
  other frames leave it parked, so an idle reader costs one wakeup per keep-alive and nothing
  in between.
* **ticking**: out of the selector; ``poll`` reads it without blocking at each tick. A tick that
  finds nothing parks it again.

Bytes read at a tick arrived at some time since the port's previous read: the consumer is told
how long that was (``span_s``), so that it can spread its reads' times over it rather than
stamp them all with the tick (which would make the presence engine's dedup take several reads
of one tag for one).

The tick is also a time grid (``at_or_after``): sessions that poll their devices on a schedule
(scales, NFC readers) wake on its points, so that their wakeups and the pipeline's coincide.

A port's consumer is device-session code. The session's task only awaits the port's end
(``StreamPort.watch``); whatever the consumer raises is handed to that task to raise, so that the
session's supervisor sees it and a failing device never stops the pipeline that polled it.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
from collections.abc import Callable, Iterator
from typing import Final

from drivers.errors import TransportError
from gateway.clock import on_grid, second_grid

TICK_S: Final = 0.08  # config: presence.tick_ms
# Bytes taken from one port per tick at most: ~1,400 ThingMagic records. A port that had more
# waiting asks for the next tick at once instead of waiting for the grid, so that a fast reader
# is not capped at this much per tick.
TICK_READ_MAX: Final = 64 * 1024
READ_SIZE: Final = 64 * 1024  # per os.read
# A tty hands over at most its line discipline's 4 KiB buffer per read, and refills it from the
# driver's buffers on a kernel worker afterwards: a read that came back this full most likely
# left bytes behind that the next read, at once, would not find yet. Such a port asks for the
# next tick at once, as one that reached TICK_READ_MAX does.
FULL_READ: Final = 4000

# bytes, and the seconds over which they may have arrived -> did they hold reads?
Consumer = Callable[[bytes, float], bool]


class StreamPort:
    """One port's descriptor and consumer; see the module docstring for its two modes."""

    def __init__(self, tick: Tick, fd: int, name: str, consume: Consumer) -> None:
        self.name = name
        self.ticking = False
        self.last_bytes = tick.loop.time()  # the last time the port brought any bytes
        self.read_at = self.last_bytes  # the last time it was read
        self.behind = False  # the last read probably left bytes waiting
        self._tick = tick
        self._fd = fd
        self._consume = consume
        self._ended: asyncio.Future[None] = tick.loop.create_future()

    async def watch(self, silence_s: float | None) -> None:
        """Return never; raise what ended the port, or ``TimeoutError`` once no bytes have come
        for ``silence_s`` (None: silence is normal for this device)."""
        loop = self._tick.loop
        while True:
            deadline = math.inf if silence_s is None else self.last_bytes + silence_s
            if deadline <= loop.time():
                raise TimeoutError
            # On the once-a-second grid: the check shares a wakeup with the loop's other timers.
            when = None if deadline == math.inf else self._tick.second_at_or_after(deadline)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(when):
                    await asyncio.shield(self._ended)

    def feed(self, data: bytes, span_s: float = 0.0) -> bool:
        """Hand ``data`` to the consumer as if read from the port (bytes the session had
        already taken before the port was attached)."""
        if not data:
            return False
        self.last_bytes = self._tick.loop.time()
        try:
            return self._consume(data, span_s)
        except Exception as exc:  # handed to the session's task: see the module docstring
            self.fail(exc)
            return False

    def fail(self, exc: BaseException) -> None:
        if not self._ended.done():
            self._ended.set_exception(exc)
            self._tick.detach(self)

    @property
    def ended(self) -> bool:
        return self._ended.done()

    def read(self, now: float, *, woken: bool = False) -> tuple[int, bool]:
        """Read what is waiting, up to the tick's ``read_max``, and hand it over: (bytes, held
        reads).
        ``behind`` tells whether more is probably waiting (see FULL_READ).

        A serial port in raw mode (VMIN 0) reads as empty both when nothing waits and when the
        device is gone; only a port the selector has just reported readable (``woken``) that
        then reads empty is gone (pyserial decides the same way)."""
        chunks = []
        total = 0
        self.behind = False
        while total < self._tick.read_max:
            try:
                data = os.read(self._fd, READ_SIZE)
            except BlockingIOError:
                break
            except OSError as exc:
                self.fail(TransportError(f"{self.name}: read failed: {exc}"))
                return total, False
            if not data:
                if woken and not total:
                    self.fail(TransportError(f"{self.name}: the port was closed (unplugged?)"))
                    return total, False
                break
            chunks.append(data)
            total += len(data)
            if len(data) < FULL_READ:
                break  # the port is empty now: no second read to find that out
        self.behind = bool(chunks) and (
            total >= self._tick.read_max or len(chunks[-1]) >= FULL_READ
        )
        span, self.read_at = now - self.read_at, now
        return total, self.feed(b"".join(chunks), span) if chunks else False

    def park(self) -> None:
        self.ticking = False
        self._tick.loop.add_reader(self._fd, self._readable)

    def unpark(self) -> None:
        self._tick.loop.remove_reader(self._fd)
        self.ticking = True

    def close(self) -> None:
        """Out of the selector for good; a failure nobody awaited any more is retrieved."""
        if not self.ticking:
            self._tick.loop.remove_reader(self._fd)
        self.ticking = False
        if self._ended.done():
            self._ended.exception()
        else:
            self._ended.cancel()

    def _readable(self) -> None:
        now = self._tick.loop.time()
        # Bytes that wake a parked port have just arrived: no span to spread them over.
        self.read_at = now
        _, busy = self.read(now, woken=True)
        if busy and not self.ended:
            self.unpark()
            self._tick.wake()


class Tick:
    """The streaming ports and the time grid. The pipeline drives it: ``poll`` at each run, and
    ``wake`` asks it for a run at the next tick. A tick given no ``wake`` drives itself (a
    session run on its own, in a test)."""

    def __init__(
        self,
        tick_s: float = TICK_S,
        wake: Callable[[], None] | None = None,
        *,
        read_max: int = TICK_READ_MAX,
    ) -> None:
        """``read_max``: bytes taken from one port per tick at most."""
        if not tick_s > 0:
            raise ValueError("tick_s must be positive")
        self.tick_s = tick_s
        self.second_s = second_grid(tick_s)  # the grid of timers that need no exact moment
        self.read_max = read_max
        self._driver = wake
        self._ports: list[StreamPort] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None

    def wake(self) -> None:
        """A parked port brought reads: the ports are to be polled at the next tick."""
        if self._driver is not None:
            self._driver()
        elif self._timer is None:
            self._timer = self.loop.call_at(self.at_or_after(self.loop.time()), self._drive)

    def _drive(self) -> None:
        self._timer = None
        more = self.poll()
        if self.ticking:
            when = self.loop.time() if more else self.at_or_after(self.loop.time() + 1e-6)
            self._timer = self.loop.call_at(when, self._drive)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    @contextlib.contextmanager
    def attach(self, fd: int, name: str, consume: Consumer) -> Iterator[StreamPort]:
        """Stream ``fd`` (non-blocking, not in the selector) while the block runs."""
        port = StreamPort(self, fd, name, consume)
        self._ports.append(port)
        port.park()
        try:
            yield port
        finally:
            self.detach(port)

    def detach(self, port: StreamPort) -> None:
        if port in self._ports:
            self._ports.remove(port)
            port.close()

    @property
    def ticking(self) -> bool:
        """Is any port ticking? Then the pipeline runs at every tick."""
        return any(p.ticking for p in self._ports)

    def poll(self) -> bool:
        """Read every ticking port and park those that had nothing. True if one probably has
        more waiting (``StreamPort.behind``): then the next run should come at once."""
        now = self.loop.time()
        more = False
        for port in [p for p in self._ports if p.ticking]:
            size, _ = port.read(now)
            if port.ended:
                continue
            if size == 0:
                port.park()
            more |= port.behind
        return more

    def at_or_after(self, t: float) -> float:
        """The first point of the grid at or after ``t`` (loop time)."""
        return on_grid(t, self.tick_s)

    async def sleep_until(self, t: float) -> None:
        """Sleep to the grid point at or after ``t`` (loop time)."""
        await asyncio.sleep(self.at_or_after(t) - self.loop.time())

    def second_at_or_after(self, t: float) -> float:
        """The first point of the once-a-second grid (``gateway.clock.second_grid``) at or after
        ``t``: for timers that need no exact moment."""
        return on_grid(t, self.second_s)
