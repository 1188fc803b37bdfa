"""A simulated serial port: one pseudo-terminal pair with a stable path.

The daemon opens ``<link_dir>/<name>``, a symlink to the slave side (``/dev/pts/N``); a device
simulator talks through the master side. The slave is put in raw mode at once, so bytes cross
unchanged (no echo, no line discipline) even before the daemon opens it and sets its own modes.

The simulator keeps its own slave fd open for the life of each pty: without one, reads on the
master fail with EIO whenever the daemon closes the port, and the simulator would busy-loop.

A hang-up closes the master and that slave fd. The kernel then hangs up every open slave file:
the daemon's reads return end-of-file (pyserial reports "device reports readiness to read but
returned no data") and its writes fail with EIO, as with a USB adapter pulled out. ``reconnect``
opens a fresh pty and re-points the symlink atomically, so reopening the same path finds the
"replugged" device under a new /dev/pts number.

All I/O is on the event loop (``add_reader``/``add_writer`` on the non-blocking master fd); there
are no threads. ``delivery`` decides how writes are cut into chunks, ``stall`` pauses output.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import errno
import os
import random
import tty
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final, Protocol, Self, TypeVar

from drivers.sentinel import NEED_DATA, NeedData

F = TypeVar("F")
F_co = TypeVar("F_co", covariant=True)


class FrameSource(Protocol[F_co]):
    """A driver decoder, as the simulators use one for what the host writes."""

    def receive_data(self, data: bytes) -> None: ...

    def next_frame(self) -> F_co | NeedData: ...


READ_SIZE: Final = 4096


class Chunking(enum.Enum):
    WHOLE = "whole"  # one os.write per write() call (the kernel may still split it)
    BYTEWISE = "bytewise"  # one byte per write: the slowest, most fragmenting link
    RANDOM = "random"  # chunks of 1..max_chunk bytes, drawn from the port's rng


@dataclass(slots=True)
class Delivery:
    """How outgoing bytes reach the daemon; may be changed while the port is in use."""

    chunking: Chunking = Chunking.WHOLE
    max_chunk: int = 16
    gap_s: float = 0.0  # pause between chunks, so each chunk arrives in its own read()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():  # a readiness callback may fire again before its removal
        future.set_result(None)


class PortClosedError(OSError):
    """The port was closed by the simulator itself; nothing more will be read."""


@dataclass(slots=True)
class _Pty:
    master: int
    slave: int
    device: str

    @classmethod
    def open(cls) -> _Pty:
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        return cls(master, slave, os.ttyname(slave))

    def close(self) -> None:
        for fd in (self.master, self.slave):
            # Already gone after a hang-up raced a close; nothing left to release.
            with contextlib.suppress(OSError):
                os.close(fd)


class SimPort:
    """A pty with a stable symlink path, fault knobs, and async read/write on its master."""

    def __init__(self, link_dir: Path | str, name: str, *, seed: int | None = None) -> None:
        self.path: Final = Path(link_dir) / name
        self.delivery = Delivery()
        self.generation = 0  # +1 on every reconnect; device sims may reset state on change
        self._rng = random.Random(seed)
        self._pty: _Pty | None = None
        self._inbox = bytearray()
        self._readable = asyncio.Event()
        self._write_lock = asyncio.Lock()
        self._stalled_until = 0.0
        self._closed = False

    @property
    def device(self) -> str:
        """The current /dev/pts/N, which changes on reconnect; prefer ``path``."""
        if self._pty is None:
            raise PortClosedError(errno.EBADF, "port is not open")
        return self._pty.device

    @property
    def is_up(self) -> bool:
        return self._pty is not None

    async def __aenter__(self) -> Self:
        self.open()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def open(self) -> None:
        """Create the pty and the symlink; call from inside the running event loop."""
        self._closed = False
        self._pty = _Pty.open()
        asyncio.get_running_loop().add_reader(self._pty.master, self._on_readable)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(self._pty.device)
        os.replace(tmp, self.path)  # atomic: the daemon never sees the path missing

    def hang_up(self) -> None:
        """Unplug: close the pty; the symlink dangles until ``reconnect``."""
        if self._pty is None:
            return
        asyncio.get_running_loop().remove_reader(self._pty.master)
        self._pty.close()
        self._pty = None
        self._inbox.clear()

    def reconnect(self) -> None:
        """Replug: a new pty behind the same path. A closed port stays closed."""
        if self._closed:
            return
        self.hang_up()
        self.generation += 1
        self.open()

    def close(self) -> None:
        self.hang_up()
        self._closed = True
        self._readable.set()  # wake a reader so that it sees the close
        self.path.unlink(missing_ok=True)

    def stall(self, seconds: float) -> None:
        """Hold all output for ``seconds`` from now (a busy or wedged device)."""
        loop = asyncio.get_running_loop()
        self._stalled_until = max(self._stalled_until, loop.time() + seconds)

    async def read(self) -> bytes:
        """Whatever the daemon has written since the last call; waits for at least one byte.

        Raises PortClosedError once ``close`` was called. Across a hang-up it keeps waiting for
        the reconnected pty.
        """
        while not self._inbox:
            if self._closed:
                raise PortClosedError(errno.EBADF, "port closed")
            self._readable.clear()
            await self._readable.wait()
        data = bytes(self._inbox)
        self._inbox.clear()
        return data

    async def write(self, data: bytes) -> bool:
        """Send ``data`` per ``delivery``; False if the port hung up before all of it went out."""
        async with self._write_lock:
            await self._wait_stall()
            delivery = self.delivery
            chunks = list(self._chunks(data, delivery))
            for i, chunk in enumerate(chunks):
                if i:
                    # Yield even with no gap: a reader on the same loop then sees the chunks
                    # one by one instead of all of them in one read.
                    await asyncio.sleep(delivery.gap_s)
                if not await self._write_all(chunk):
                    return False
            return True

    def _chunks(self, data: bytes, delivery: Delivery) -> list[bytes]:
        match delivery.chunking:
            case Chunking.WHOLE:
                return [data]
            case Chunking.BYTEWISE:
                return [data[i : i + 1] for i in range(len(data))]
            case Chunking.RANDOM:
                out, i = [], 0
                while i < len(data):
                    n = self._rng.randint(1, max(1, delivery.max_chunk))
                    out.append(data[i : i + n])
                    i += n
                return out

    async def _wait_stall(self) -> None:
        loop = asyncio.get_running_loop()
        while (left := self._stalled_until - loop.time()) > 0:
            await asyncio.sleep(left)

    async def _write_all(self, data: bytes) -> bool:
        view = memoryview(data)
        while view:
            pty = self._pty
            if pty is None:
                return False
            try:
                view = view[os.write(pty.master, view) :]
            except BlockingIOError:
                # The daemon is not reading and the pty buffer is full: wait, as a UART with
                # flow control would, rather than drop bytes the test may be counting on.
                await self._wait_writable(pty.master)
            except OSError:
                return False
        return True

    async def _wait_writable(self, fd: int) -> None:
        loop = asyncio.get_running_loop()
        ready = loop.create_future()
        loop.add_writer(fd, _resolve, ready)
        try:
            # Re-check for a hang-up now and then. asyncio.timeout, not wait_for: on 3.11
            # wait_for can swallow a cancellation that races the future's completion.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.1):
                    await ready
        finally:
            loop.remove_writer(fd)

    def _on_readable(self) -> None:
        assert self._pty is not None
        try:
            data = os.read(self._pty.master, READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""  # cannot happen while we hold the slave open; treat as silence
        if data:
            self._inbox += data
            self._readable.set()


async def incoming_frames(
    port: SimPort, decoder_for_pty: Callable[[], FrameSource[F]]
) -> AsyncIterator[F]:
    """What the host writes to ``port``, frame by frame, until the port is closed for good.

    ``decoder_for_pty`` is asked for the decoder at the start and again after each replug
    (``port.generation`` changed), before the new pty's first bytes go in. The card readers
    return a fresh one: a half frame died with the old pty, and its bytes must not be glued to
    the first frame on the new one. The output devices keep theirs, whose counters the tests
    read over the device's whole life, and may reset their own state there instead.
    """
    decoder, generation = decoder_for_pty(), port.generation
    while True:
        try:
            data = await port.read()
        except PortClosedError:
            return
        if port.generation != generation:
            decoder, generation = decoder_for_pty(), port.generation
        decoder.receive_data(data)
        while (frame := decoder.next_frame()) is not NEED_DATA:
            yield frame
