"""Start-up: time from spawn to READY=1 and RSS at READY, on an empty and on a filled numba
cache (``NUMBA_CACHE_DIR``, systemd's CacheDirectory in production)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.e2e import ZONES, write_config
from bench.loadgen import FakeReader, population
from bench.proc import Measured


@dataclass(frozen=True, slots=True)
class Start:
    cache: str
    ready_s: float
    rss_mb: float


def start_up(broker: str, runs: int = 1) -> list[Start]:
    out: list[Start] = []
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as cache:
        reader = FakeReader(Path(tmp) / "uhf-0", population(50, list(ZONES), 500), rate=200.0)
        try:
            config = write_config(Path(tmp), [reader.link], broker)
            for label in ["cold", *["warm"] * runs]:
                (Path(tmp) / "outbox.db").unlink(missing_ok=True)
                with Measured.daemon(config, {"NUMBA_CACHE_DIR": cache}) as daemon:
                    ready = daemon.wait_ready()
                    out.append(Start(label, ready, daemon.sample().rss_mb))
        finally:
            reader.close()
    return out


IMPORTS = """
import gateway.daemon, gateway.devices.thingmagic
from pathlib import Path
rss = [l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmRSS")]
print(int(rss[0].split()[1]) / 1024)
"""


def import_rss_mb() -> float:
    """RSS of an interpreter that has only imported the daemon (numpy, numba, llvmlite...)."""
    done = subprocess.run([sys.executable, "-c", IMPORTS], capture_output=True, check=True)
    return float(done.stdout)
