"""The one module in ``drivers`` that does I/O: a serial port opened, read and written as asyncio
streams.

``url`` is a device path (``/dev/ttyUSB0``) or a pyserial URL; ``socket://host:port`` and
``rfc2217://host:port`` reach serial-to-network bridges. pyserial-asyncio-fast does the work.
Every failure to open, read (``read_chunk``) or write (``write``) is wrapped once, here, into
``TransportError`` naming the port, so callers above deal with one error type. ``loop://`` is
refused: pyserial's loopback has no file descriptor for the event loop to watch, and it fails its
first non-blocking write.

A streaming session may take the port's reading out of the transport (``take_reading``) and read
the descriptor on its own schedule; the writer keeps working, and ``give_back_reading`` returns
reading to the transport for request/response again.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, Final

import serial_asyncio_fast

from drivers.errors import TransportError

_NO_FILE_DESCRIPTOR_SCHEMES: Final = ("loop://",)
READ_LIMIT: Final = 1 << 20  # what ``buffered`` takes at most
READ_CHUNK: Final = 4096  # what ``read_chunk`` takes at most


async def open_serial(
    url: str, *, baudrate: int, **serial_kwargs: Any
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Open ``url`` at ``baudrate``; further keywords go to ``serial.serial_for_url``."""
    if url.startswith(_NO_FILE_DESCRIPTOR_SCHEMES):
        raise TransportError(f"{url}: this URL cannot be used with the asyncio transport")
    try:
        reader, writer = await serial_asyncio_fast.open_serial_connection(
            url=url, baudrate=baudrate, loop=asyncio.get_running_loop(), **serial_kwargs
        )
    # pyserial's SerialException is an OSError; a malformed URL or setting is a ValueError.
    except (OSError, ValueError) as exc:
        raise TransportError(f"cannot open serial port {url}: {exc}") from exc
    return reader, writer


async def read_chunk(reader: asyncio.StreamReader, port: str) -> bytes:
    """Whatever ``port`` has waiting, once there is at least one byte (one wakeup per chunk);
    TransportError if the read fails or the port was closed."""
    try:
        data = await reader.read(READ_CHUNK)
    except (OSError, ConnectionError) as exc:
        raise TransportError(f"{port}: read failed: {exc}") from exc
    if not data:
        raise TransportError(f"{port}: the port was closed (device unplugged?)")
    return data


async def write(writer: asyncio.StreamWriter, data: bytes, port: str) -> None:
    """Write ``data`` and wait until the port has taken it; TransportError if it fails."""
    writer.write(data)
    try:
        await writer.drain()
    except (OSError, ConnectionError) as exc:
        raise TransportError(f"{port}: write failed: {exc}") from exc


def take_reading(writer: asyncio.StreamWriter) -> int:
    """Stop the asyncio transport from reading the port, and return its file descriptor (set
    non-blocking) for a caller that reads it itself. ``give_back_reading`` undoes it."""
    transport = _reading_transport(writer)
    port = transport.get_extra_info("serial")
    try:
        fd = int(port.fileno())
    except (AttributeError, OSError, ValueError) as exc:
        raise TransportError(f"{port}: this port has no file descriptor to stream from") from exc
    transport.pause_reading()
    os.set_blocking(fd, False)
    return fd


def give_back_reading(writer: asyncio.StreamWriter) -> None:
    transport = _reading_transport(writer)
    if not transport.is_closing():
        transport.resume_reading()


def _reading_transport(writer: asyncio.StreamWriter) -> asyncio.Transport:
    transport = writer.transport  # typed as write-only; a serial transport reads as well
    if not isinstance(transport, asyncio.Transport):
        raise TransportError(f"{transport!r} cannot be read")
    return transport


async def buffered(reader: asyncio.StreamReader) -> bytes:
    """What ``reader`` holds already, without waiting for more (b"" if nothing)."""
    try:
        # A timeout of 0 fires at the next loop turn: a read that has its bytes at hand returns
        # before that, one that would have to wait is cancelled before any byte is taken.
        async with asyncio.timeout(0):
            return await reader.read(READ_LIMIT)
    except TimeoutError:
        return b""
