"""The demo waits for the daemon's READY=1 before its clock starts.

The daemon's first start on a fresh install may compile its kernels (seconds here, minutes on a
small board under numba's JIT). The demo therefore gives the daemon a notify socket, as systemd
would, shows the progress the daemon reports there (``STATUS=``) and holds the simulated store's
clock at "before opening" until READY, so that the scenario, the ``--duration`` and the scoring
all begin when the daemon can see them.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

QUIET_S: Final = 10.0  # say that we are still waiting after so long without a word


class HeldClock:
    """Scenario seconds that read -1 (before any visit) until ``start``."""

    def __init__(self) -> None:
        self.origin: float | None = None

    def __call__(self) -> float:
        return -1.0 if self.origin is None else time.monotonic() - self.origin

    def start(self) -> None:
        self.origin = time.monotonic()


class NotifySocket:
    """A datagram socket that the daemon's ``NOTIFY_SOCKET`` points at.

    One task reads it for as long as it is open and queues what comes: a receive cancelled by a
    timeout can lose the datagram it had already taken from the socket, and the daemon says
    READY=1 only once."""

    QUEUED: Final = 64  # datagrams kept unread; later ones are dropped (STATUS and WATCHDOG)

    def __init__(self, path: Path) -> None:
        self.path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(path))
        self._sock.setblocking(False)
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(self.QUEUED)
        self._reader: asyncio.Task[None] | None = None

    def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        self._sock.close()

    async def messages(self, timeout: float) -> list[str]:
        """The fields of the next datagram, or [] when none came within ``timeout``."""
        if self._reader is None:
            self._reader = asyncio.get_running_loop().create_task(self._read())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                raw = await self._queue.get()  # cancelled, it leaves the queue as it was
                return raw.decode(errors="replace").splitlines()
        return []

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            raw = await loop.sock_recv(self._sock, 4096)
            with contextlib.suppress(asyncio.QueueFull):
                self._queue.put_nowait(raw)


async def wait_ready(
    notify: NotifySocket, daemon: subprocess.Popen[bytes], say: Callable[[str], None]
) -> float | None:
    """Seconds from now to the daemon's READY=1, or None if it exited first."""
    started = last_word = time.monotonic()
    while daemon.poll() is None:
        fields = await notify.messages(timeout=1.0)
        now = time.monotonic()
        if "READY=1" in fields:
            return now - started
        for field in fields:
            if field.startswith("STATUS="):
                say(f"daemon starting: {field.removeprefix('STATUS=')}")
                last_word = now
        if now - last_word >= QUIET_S:
            say(f"waiting for the daemon to be ready ({now - started:.0f} s)")
            last_word = now
    return None
