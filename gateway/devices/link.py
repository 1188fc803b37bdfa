"""Request/response over a serial stream, for sessions whose devices answer commands.

Reads take whatever the port has waiting (one wakeup per chunk, not per frame: on a Pi the wakeups
cost more CPU than the decoding). Frames that are not the awaited answer, such as tag records
still streaming from a reader the daemon did not stop last time, are passed to ``on_other`` or
dropped, never mistaken for the answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from drivers.sentinel import NEED_DATA, NeedData
from drivers.transport import read_chunk, write

F = TypeVar("F")
F_co = TypeVar("F_co", covariant=True)


class FrameDecoder(Protocol[F_co]):
    def receive_data(self, data: bytes) -> None: ...

    def next_frame(self) -> F_co | NeedData: ...


class Link(Generic[F]):
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        decoder: FrameDecoder[F],
        port: str,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.decoder = decoder
        self.port = port

    async def send(self, data: bytes) -> None:
        await write(self.writer, data, self.port)

    async def receive(self) -> list[F]:
        """Wait for bytes and return the complete frames they finish (possibly none)."""
        self.decoder.receive_data(await read_chunk(self.reader, self.port))
        frames = []
        while (frame := self.decoder.next_frame()) is not NEED_DATA:
            frames.append(frame)
        return frames

    async def wait_for(
        self,
        match: Callable[[F], bool],
        timeout: float,
        on_other: Callable[[F], None] | None = None,
    ) -> F:
        """The first frame that ``match``es, within ``timeout`` seconds (TimeoutError)."""
        async with asyncio.timeout(timeout):
            while True:
                for frame in await self.receive():
                    if match(frame):
                        return frame
                    if on_other is not None:
                        on_other(frame)

    def close(self) -> None:
        self.writer.close()
