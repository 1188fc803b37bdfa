"""Just enough HTTP/1.1 client for an OpenEPaperLink access point: one keep-alive connection.

The AP's web server answers the few requests the gateway makes with a ``Content-Length`` body
(or closes the connection after it), so that is all this client reads; a chunked answer is
refused rather than half-parsed. Requests go one at a time. An idle keep-alive connection that
the AP closed is noticed when the next request finds it dead before any answer arrived, and
that request is sent once more on a fresh connection: the requests the gateway sends are
idempotent (uploading the same template twice shows the same thing). Every failure leaves here
as a driver error: ``TransportError`` for the connection, ``FrameError`` for an answer that is
not HTTP.
"""

from __future__ import annotations

import asyncio
from typing import Final

from drivers.errors import FrameError, TransportError
from drivers.openepaperlink import HttpRequest

MAX_HEAD: Final = 16 * 1024
MAX_BODY: Final = 1 << 20  # a /get_db page of 50 tags is ~20 KB


class _DeadConnection(Exception):
    """The connection was closed before any of the answer arrived."""


class HttpConnection:
    def __init__(self, host: str, port: int, timeout_s: float) -> None:
        self.host, self.port, self.timeout_s = host, port, timeout_s
        self.name = f"http://{host}:{port}"
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def connect(self) -> None:
        self.close()
        try:
            async with asyncio.timeout(self.timeout_s):
                self._streams = await asyncio.open_connection(self.host, self.port, limit=MAX_HEAD)
        except (OSError, TimeoutError) as exc:
            raise TransportError(f"cannot connect to {self.name}: {exc or 'timed out'}") from exc

    async def request(self, request: HttpRequest) -> tuple[int, bytes]:
        """Status and body; TransportError when the AP cannot be reached or does not answer."""
        reused = self._streams is not None
        if self._streams is None:
            await self.connect()
        try:
            return await self._exchange(request)
        except _DeadConnection:
            if not reused:
                raise TransportError(f"{self.name} closed the connection unanswered") from None
        await self.connect()
        try:
            return await self._exchange(request)
        except _DeadConnection:
            raise TransportError(f"{self.name} closed the connection unanswered") from None

    async def _exchange(self, request: HttpRequest) -> tuple[int, bytes]:
        assert self._streams is not None
        reader, writer = self._streams
        try:
            async with asyncio.timeout(self.timeout_s):
                writer.write(_request_bytes(request, self.host))
                await writer.drain()
                return await self._response(reader)
        except TimeoutError as exc:
            self.close()
            raise TransportError(f"{self.name}: no answer within {self.timeout_s} s") from exc
        except (OSError, asyncio.IncompleteReadError) as exc:
            self.close()
            partial = isinstance(exc, asyncio.IncompleteReadError) and exc.partial
            if isinstance(exc, ConnectionResetError | BrokenPipeError) or partial == b"":
                raise _DeadConnection from exc
            raise TransportError(f"{self.name}: connection failed: {exc}") from exc
        except (FrameError, asyncio.LimitOverrunError, ValueError) as exc:
            self.close()
            raise FrameError(f"{self.name}: not an HTTP answer: {exc}") from exc

    async def _response(self, reader: asyncio.StreamReader) -> tuple[int, bytes]:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        status_line, *lines = head.split("\r\n")
        version, status, *_ = status_line.split(" ", 2)
        if not version.startswith("HTTP/1."):
            raise FrameError(f"status line {status_line[:60]!r}")
        headers = {
            k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines if ln)
        }
        if "chunked" in headers.get("transfer-encoding", ""):
            raise FrameError("chunked answers are not supported")
        if "content-length" in headers:
            length = int(headers["content-length"])
            if not 0 <= length <= MAX_BODY:
                raise FrameError(f"Content-Length {length}")
            body = await reader.readexactly(length)
        else:
            body = await _read_to_end(reader)
            headers["connection"] = "close"
        if headers.get("connection", "").lower() == "close":
            self.close()
        return int(status), body

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None


async def _read_to_end(reader: asyncio.StreamReader) -> bytes:
    """A body without a length ends with the connection."""
    body = bytearray()
    while chunk := await reader.read(MAX_BODY):
        body += chunk
        if len(body) > MAX_BODY:
            raise FrameError(f"body over {MAX_BODY} bytes")
    return bytes(body)


def _request_bytes(request: HttpRequest, host: str) -> bytes:
    body = request.body
    headers = {"Host": host, "Content-Length": str(len(body)), **request.headers}
    head = f"{request.method} {request.target} HTTP/1.1\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return (head + "\r\n").encode("ascii") + body
