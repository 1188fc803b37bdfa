"""The daemon's end of a simulated port, opened through the stable symlink like a real one."""

from __future__ import annotations

import asyncio
import os
import tty
from pathlib import Path


class FarEnd:
    """A raw, non-blocking fd on the slave side, read on the event loop."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self.fd)
        self.reads: list[bytes] = []  # every os.read result, to observe chunking

    def write(self, data: bytes) -> None:
        os.write(self.fd, data)

    async def read_some(self, timeout: float = 2.0) -> bytes:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        loop.add_reader(self.fd, lambda: ready.done() or ready.set_result(None))
        try:
            # Not wait_for: on 3.11 it can swallow the cancellation of an enclosing timeout
            # when the future completes at the same moment, and a pump loop would never end.
            async with asyncio.timeout(timeout):
                await ready
        finally:
            loop.remove_reader(self.fd)
        data = os.read(self.fd, 65536)
        self.reads.append(data)
        return data

    async def read_exactly(self, n: int, timeout: float = 2.0) -> bytes:
        out = bytearray()
        async with asyncio.timeout(timeout):
            while len(out) < n:
                out += await self.read_some(timeout)
        return bytes(out)

    def close(self) -> None:
        os.close(self.fd)
