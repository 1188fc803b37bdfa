"""The one module in ``drivers`` that does I/O: opening a serial port as asyncio streams.

``url`` is a device path (``/dev/ttyUSB0``) or a pyserial URL; ``socket://host:port`` and
``rfc2217://host:port`` reach serial-to-network bridges. pyserial-asyncio-fast does the work.
Every failure to open is wrapped once, here, into ``TransportError`` naming the port, so callers
above deal with one error type. ``loop://`` is refused: pyserial's loopback has no file
descriptor for the event loop to watch, and it fails its first non-blocking write.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

import serial_asyncio_fast

from drivers.errors import TransportError

_NO_FILE_DESCRIPTOR_SCHEMES: Final = ("loop://",)


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
