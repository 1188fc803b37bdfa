"""The host side of a simulated ThingMagic module: the driver's encoders and decoder on a pty."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from sim_far_end import FarEnd

from drivers.sentinel import NEED_DATA
from drivers.thingmagic.decoder import ResponseDecoder
from drivers.thingmagic.frames import Request, Response


class Host:
    def __init__(self, path: Path) -> None:
        self.far = FarEnd(path)
        self.decoder = ResponseDecoder()
        self.frames: list[Response] = []  # every frame decoded, in order
        self.raw = bytearray()  # every byte received

    async def pump(self, seconds: float) -> None:
        """Read and decode whatever arrives for ``seconds``."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                while True:
                    self._feed(await self.far.read_some(timeout=seconds + 1))

    async def until(self, predicate, timeout: float = 3.0) -> Response:  # type: ignore[no-untyped-def]
        """Read until a frame matching ``predicate`` arrives; return it."""
        seen = len(self.frames)
        async with asyncio.timeout(timeout):
            while True:
                for frame in self.frames[seen:]:
                    if predicate(frame):
                        return frame
                seen = len(self.frames)
                self._feed(await self.far.read_some(timeout=timeout))

    async def until_count(self, predicate, n: int, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
        """Read until ``n`` frames received since the call match ``predicate``."""
        seen = 0

        def enough(frame: Response) -> bool:
            nonlocal seen
            seen += bool(predicate(frame))
            return seen >= n

        await self.until(enough, timeout)

    async def command(self, request: Request, timeout: float = 3.0) -> Response:
        self.far.write(request.to_bytes())
        return await self.until(lambda f: f.opcode == request.opcode, timeout)

    def _feed(self, data: bytes) -> None:
        self.raw += data
        self.decoder.receive_data(data)
        while (frame := self.decoder.next_frame()) is not NEED_DATA:
            self.frames.append(frame)

    def close(self) -> None:
        self.far.close()
