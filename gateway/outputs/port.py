"""A serial port held open by an output session and read all the time.

Outputs mostly listen only while they wait for an answer, but an unplugged adapter shows itself
only to a reader (end-of-file), so ``pump`` reads continuously, hands every chunk to the
session's decoder, and raises ``TransportError`` when the port goes away: the session then
reports down at once, not at its next action.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Self

from drivers.transport import open_serial, read_chunk, write

READ_CHUNK = 4096


class SerialPort:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        name: str,
        feed: Callable[[bytes], None],
    ) -> None:
        self.name = name
        self._reader = reader
        self._writer = writer
        self._feed = feed
        self._arrived = asyncio.Event()

    @classmethod
    async def open(cls, url: str, baudrate: int, feed: Callable[[bytes], None]) -> Self:
        reader, writer = await open_serial(url, baudrate=baudrate)
        return cls(reader, writer, url, feed)

    async def pump(self) -> None:
        while True:
            self._feed(await read_chunk(self._reader, self.name))
            self._arrived.set()

    async def send(self, data: bytes) -> None:
        await write(self._writer, data, self.name)

    def expect(self) -> None:
        """Forget earlier arrivals: the next ``arrival`` waits for bytes fed after this call."""
        self._arrived.clear()

    async def arrival(self, deadline: float) -> bool:
        """True when bytes were fed since ``expect``; False if ``deadline`` (loop time) passed."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(deadline):
                await self._arrived.wait()
        arrived = self._arrived.is_set()
        self._arrived.clear()
        return arrived

    def close(self) -> None:
        self._writer.close()
