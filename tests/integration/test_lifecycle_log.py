"""What ``silentgate run`` logs over a life with a reload: every start, ready, connection,
reload and stop line, however soon after the last one it comes, and no WARNING on a start where
everything works."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from pathlib import Path

import pytest
from harness import HeldClock, config_text

from demo.broker import BrokerProcess
from firmware_sim.pty import SimPort

pytestmark = [pytest.mark.broker, pytest.mark.slow, pytest.mark.timeout(120)]

SILENTGATE = str(Path(sys.executable).parent / "silentgate")


async def log_has(log: Path, needle: str, times: int) -> None:
    async with asyncio.timeout(60):
        while log.read_text().count(needle) < times:
            await asyncio.sleep(0.05)


def datagrams(sock: socket.socket) -> list[dict[str, str]]:
    """The notify messages received so far, each as its fields."""
    got = []
    with contextlib.suppress(BlockingIOError):
        while True:
            text = sock.recv(4096).decode()
            got.append(dict(line.split("=", 1) for line in text.splitlines()))
    return got


async def test_a_reload_then_a_stop_log_every_lifecycle_line_and_a_normal_start_no_warning(
    broker: BrokerProcess, reader: tuple[SimPort, HeldClock], tmp_path: Path
) -> None:
    port, clock = reader
    config = tmp_path / "gw.toml"
    good = config_text(tmp_path, str(port.path), broker.url)
    (tmp_path / "secret").chmod(0o600)  # as an installation keeps it: no warning for it
    config.write_text(good)
    log = tmp_path / "daemon.log"
    manager = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    manager.bind(str(tmp_path / "notify"))
    manager.setblocking(False)
    env = os.environ | {"NOTIFY_SOCKET": str(tmp_path / "notify")}
    with log.open("wb") as stderr:
        daemon = await asyncio.create_subprocess_exec(
            SILENTGATE, "run", "--config", str(config),
            stdout=asyncio.subprocess.DEVNULL, stderr=stderr, env=env,
        )  # fmt: skip
    try:
        await log_has(log, "gateway.uplink: connected to", 1)
        await log_has(log, "gateway.daemon: ready: door=ok", 1)
        first_start = log.read_text()
        clock.start()
        config.write_text(good.replace("dwell_s = 2.0", "dwell_s = 3.0"))
        datagrams(manager)  # what the start said
        signalled = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        daemon.send_signal(signal.SIGHUP)
        await log_has(log, "gateway.uplink: connected to", 2)
        await log_has(log, "gateway.daemon: ready: door=ok", 2)
        reload = datagrams(manager)
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(daemon.wait(), 30) == 0
        manager.close()
    # RELOADING=1 with the CLOCK_MONOTONIC time of the reload, then READY=1 from the new daemon.
    # (The start's READY=1 may come late, after the log line: look from RELOADING=1 on.)
    at = next(i for i, fields in enumerate(reload) if fields.get("RELOADING") == "1")
    assert int(reload[at]["MONOTONIC_USEC"]) >= signalled
    assert any(fields.get("READY") == "1" for fields in reload[at + 1 :])
    text = log.read_text()
    assert [line for line in first_start.splitlines() if " WARNING " in line] == []
    assert " INFO gateway.rules.content: no content cache " in first_start
    for line, times in [
        ("gateway.daemon: silentgate", 2),  # ... starting: 1 devices
        ("gateway.daemon: kernels:", 2),
        ("gateway.daemon: ready:", 2),
        ("gateway.uplink: connected to", 2),
        ("gateway.lifecycle: reloading", 1),
        ("gateway.daemon: stopping: flushing the pipeline", 2),
        ("gateway.uplink: disconnecting from", 2),
        ("gateway.daemon: stopped", 2),
    ]:
        assert text.count(line) == times, f"{line!r} {text.count(line)} times:\n{text}"
    assert text.rstrip().endswith("gateway.daemon: stopped")
