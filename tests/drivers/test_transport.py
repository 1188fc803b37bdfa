"""drivers.transport over a real pseudo-terminal, and its error wrapping."""

from __future__ import annotations

import asyncio
import os
import socket
import tty
from collections.abc import Iterator

import pytest

from drivers.errors import TransportError
from drivers.transport import open_serial

pytestmark = pytest.mark.timeout(10)


@pytest.fixture
def pty_pair() -> Iterator[tuple[int, str]]:
    controller, device = os.openpty()
    tty.setraw(controller)
    path = os.ttyname(device)
    yield controller, path
    os.close(controller)
    os.close(device)


async def read_fd(fd: int, n: int) -> bytes:
    loop = asyncio.get_running_loop()
    out = b""
    while len(out) < n:
        ready: asyncio.Future[None] = loop.create_future()
        loop.add_reader(fd, ready.set_result, None)
        try:
            await ready
        finally:
            loop.remove_reader(fd)
        out += os.read(fd, n - len(out))
    return out


async def test_bytes_cross_a_pty_both_ways(pty_pair: tuple[int, str]) -> None:
    controller, path = pty_pair
    reader, writer = await open_serial(path, baudrate=115_200)
    try:
        # Bytes a module would send, including 0xFF and a NUL that a cooked tty would mangle.
        os.write(controller, bytes.fromhex("FF 00 22 04 00 84 E0"))
        assert await reader.readexactly(7) == bytes.fromhex("FF 00 22 04 00 84 E0")
        writer.write(bytes.fromhex("FF 03 2F 00 00 02 5E 86"))
        await writer.drain()
        assert await read_fd(controller, 8) == bytes.fromhex("FF 03 2F 00 00 02 5E 86")
    finally:
        writer.close()


async def test_missing_port_is_a_transport_error() -> None:
    with pytest.raises(TransportError, match="/dev/ttyDOES-NOT-EXIST"):
        await open_serial("/dev/ttyDOES-NOT-EXIST", baudrate=115_200)


async def test_refused_socket_url_is_a_transport_error() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(TransportError, match=f"socket://127.0.0.1:{port}"):
        await open_serial(f"socket://127.0.0.1:{port}", baudrate=115_200)


async def test_unusable_urls_are_transport_errors() -> None:
    with pytest.raises(TransportError, match="loop://"):
        await open_serial("loop://", baudrate=115_200)
    with pytest.raises(TransportError, match="nosuch://"):
        await open_serial("nosuch://x", baudrate=115_200)
