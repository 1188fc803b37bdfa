"""The kernels' warm-up at start: on a thread, with progress told to systemd, and a stop that
does not wait for it. A real notify socket; the warm-up is a stand-in that blocks until told."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.runtime.notify import Notifier
from gateway.service.warmup import warm_up_or_stop

pytestmark = [pytest.mark.kernels, pytest.mark.timeout(30)]


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[socket.socket]:
    """The service manager's end of NOTIFY_SOCKET."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.setblocking(False)
    yield sock
    sock.close()


def received(sock: socket.socket) -> list[str]:
    out = []
    while True:
        try:
            out += sock.recv(4096).decode().splitlines()
        except BlockingIOError:
            return out


async def test_a_slow_warm_up_keeps_extending_the_start_and_a_stop_does_not_wait_for_it(
    manager: socket.socket, tmp_path: Path
) -> None:
    release, stop = threading.Event(), asyncio.Event()
    notifier = Notifier(str(tmp_path / "notify"))
    task = asyncio.create_task(
        warm_up_or_stop(stop.wait, notifier, work=release.wait, every_s=0.05)
    )
    fields: list[str] = []
    while sum(f.startswith("EXTEND_TIMEOUT_USEC=") for f in fields) < 2:
        await asyncio.sleep(0.02)
        fields += received(manager)
    assert "EXTEND_TIMEOUT_USEC=30000000" in fields
    assert any(f.startswith("STATUS=compiling kernels") for f in fields)
    stop.set()
    assert await task is False  # the work is still blocked: the stop did not wait
    release.set()


async def test_a_warm_up_that_finishes_lets_the_start_go_on() -> None:
    never = asyncio.Event()
    assert await warm_up_or_stop(never.wait, Notifier(""), work=lambda: None) is True


async def test_a_warm_up_that_fails_fails_the_start() -> None:
    def broken() -> None:
        raise RuntimeError("no kernels today")

    never = asyncio.Event()
    with pytest.raises(RuntimeError, match="no kernels today"):
        await warm_up_or_stop(never.wait, Notifier(""), work=broken)
