"""What the integration tests share: a small store scenario, a daemon process, waiting."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from firmware_sim.epc import Sgtin, customer_epc
from firmware_sim.scenario import Scenario, Subject, Visit

SECRET = "e2e-secret-of-16-bytes"
CUSTOMER = customer_epc("C0FFEE", 7)
ITEM = Sgtin(1, "0614141", "812345", 42).to_hex()
# A customer walks in, lingers at shelf-a past its dwell time, and leaves; an item sits on
# shelf-b throughout. Times are seconds into the scenario.
SCENARIO = Scenario(
    zones=("entrance", "shelf-a", "shelf-b"),
    subjects=(Subject(CUSTOMER, "customer"), Subject(ITEM, "item")),
    visits=(
        Visit(CUSTOMER, "entrance", 1.0, 3.0),
        Visit(CUSTOMER, "shelf-a", 3.0, 7.5),
        Visit(ITEM, "shelf-b", 0.0, 1000.0),
    ),
    duration=1000.0,
)


def config_text(tmp: Path, port: str, broker: str) -> str:
    (tmp / "secret").write_text(SECRET + "\n")
    return f"""
[site]
store = "store-042"
gateway = "gw-e2e"
[mqtt]
url = "{broker}"
[storage]
path = "{tmp / "outbox.db"}"
[privacy]
secret_file = "{tmp / "secret"}"
[tags]
customer_prefixes = ["C0FFEE"]
[[readers]]
id = "door"
driver = "thingmagic"
port = "{port}"
antennas = {{ 1 = "entrance", 2 = "shelf-a", 3 = "shelf-b" }}
[[zones]]
id = "shelf-a"
dwell_s = 2.0
"""


class HeldClock:
    """Scenario time that stands before the first visit until ``start()``: the scenario begins
    once the daemon is up, however long its start takes on a loaded machine."""

    def __init__(self) -> None:
        self.origin: float | None = None

    def __call__(self) -> float:
        return -1.0 if self.origin is None else time.monotonic() - self.origin

    def start(self) -> None:
        self.origin = time.monotonic()


def start_daemon(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "gateway", "run", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def stop_daemon(proc: subprocess.Popen[bytes]) -> str:
    proc.send_signal(signal.SIGTERM)
    rc = await asyncio.to_thread(proc.wait, 20)
    assert proc.stderr is not None
    with proc.stderr:
        log = proc.stderr.read().decode()
    assert rc == 0, log
    return log


async def wait_for(events: list[dict[str, Any]], pred: Any, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while not any(pred(e) for e in events):
            await asyncio.sleep(0.05)
