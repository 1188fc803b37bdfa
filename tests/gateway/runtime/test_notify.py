"""sd_notify through a real datagram socket, as systemd listens for it."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.runtime.notify import Notifier


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.settimeout(5)
    yield sock
    sock.close()


def fields(sock: socket.socket) -> dict[str, str]:
    return dict(line.split("=", 1) for line in sock.recv(4096).decode().splitlines())


def test_reloading_carries_the_monotonic_time_systemd_253_needs(
    manager: socket.socket, tmp_path: Path
) -> None:
    # Without MONOTONIC_USEC systemd 253+ ignores RELOADING=1 and `systemctl reload` returns
    # before the reload is done (sd_notify(3)).
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    Notifier(str(tmp_path / "notify")).reload_started()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    got = fields(manager)
    assert got["RELOADING"] == "1"
    assert before <= int(got["MONOTONIC_USEC"]) <= after
    assert got["STATUS"] == "reloading the config"


def test_ready_and_stopping(manager: socket.socket, tmp_path: Path) -> None:
    notifier = Notifier(str(tmp_path / "notify"))
    notifier.ready("door=ok")
    assert fields(manager) == {"READY": "1", "STATUS": "door=ok"}
    notifier.stopping()
    assert fields(manager) == {"STOPPING": "1", "STATUS": "stopping"}
