"""Start-up: spawn -> READY=1 and RSS at READY, for each way kernels run, and what RSS is made of.

    .venv/bin/python -m bench.startup              # a fresh install in scratch directories
    .venv/bin/python -m bench.startup --installed  # this installation as it is (arm64 proof)

A fresh install: ``silentgate build-kernels`` into an empty directory (timed), then the first
start and ``--starts`` later ones on the compiled kernels; numba's JIT on an empty cache (a
first start that compiles) and on the filled one; the kernels as plain Python. Each start is
a daemon with one ThingMagic reader streaming 200 reads/s on a pty. ``--installed`` measures
starts with the kernel directories as this installation has them (after its own build).

``import_rss`` loads the daemon's modules one group at a time in a fresh interpreter and reads
VmRSS after each: the make-up of the daemon's RSS, with and without numba.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.e2e import ZONES, write_config
from bench.loadgen import FakeReader, population
from bench.proc import Measured

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True, slots=True)
class Start:
    what: str
    ready_s: float
    rss_mb: float


def starts(broker: str, runs: int = 2, installed: bool = False) -> Iterator[Start]:
    """Builds, first starts and later starts, one line each; see the module docstring."""
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as cache:
        reader = FakeReader(Path(tmp) / "uhf-0", population(50, list(ZONES), 500), rate=200.0)
        try:
            config = write_config(Path(tmp), [reader.link], broker)
            if installed:
                yield from _series(config, "installed", {}, runs)
                return
            yield build(Path(cache) / "compiled")
            compiled = {"SILENTGATE_KERNELS": "compiled",
                        "SILENTGATE_KERNELS_DIR": str(Path(cache) / "compiled")}  # fmt: skip
            yield from _series(config, "compiled", compiled, runs)
            jit = {"SILENTGATE_KERNELS": "jit", "NUMBA_CACHE_DIR": str(Path(cache) / "jit")}
            yield from _series(config, "jit", jit, runs)
            yield from _series(config, "python", {"SILENTGATE_KERNELS": "python"}, 0)
        finally:
            reader.close()


def build(base: Path) -> Start:
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "gateway", "build-kernels", "--dir", str(base)],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    return Start("silentgate build-kernels (fresh)", time.monotonic() - started, 0.0)


def _series(config: Path, label: str, env: dict[str, str], runs: int) -> Iterator[Start]:
    for n in range(runs + 1):
        (config.parent / "outbox.db").unlink(missing_ok=True)
        with Measured.daemon(config, env) as daemon:
            ready = daemon.wait_ready(timeout=900)
            which = "first start" if n == 0 else "later start"
            yield Start(f"{label}: {which}", ready, daemon.sample().rss_mb)


GROUPS = [
    ("interpreter", []),
    ("numpy", ["numpy"]),
    ("pydantic (config)", ["pydantic"]),
    ("serial ports", ["serial", "serial_asyncio_fast"]),
    ("MQTT (paho, aiomqtt)", ["paho.mqtt.client", "aiomqtt"]),
    ("Modbus (pymodbus)", ["pymodbus.client"]),
    ("metrics (prometheus_client)", ["prometheus_client"]),
    ("sqlite3", ["sqlite3"]),
    (
        "kernels: compiled extension",
        ["gateway.stages.kernels.presence_kernel", "drivers.thingmagic.batch"],
    ),
    ("the daemon's own modules", ["gateway.service.daemon"]),
]
NUMBA = [("numba (JIT only)", ["numba"]), ("llvmlite JIT engine", ["llvmlite.binding"])]
IMPORTS = """
import importlib, json, sys
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
out = []
for label, modules in json.loads(sys.argv[1]):
    for m in modules:
        importlib.import_module(m)
    out.append((label, rss()))
print(json.dumps(out))
"""


def import_rss(base: Path | None, jit: bool = False) -> list[tuple[str, float]]:
    """(group, VmRSS MB after importing it) in order; ``base``: a compiled build to load."""
    import json  # noqa: PLC0415

    groups = GROUPS[:8] + (NUMBA if jit else []) + GROUPS[8:]
    env = dict(os.environ)
    if base is not None and not jit:
        env |= {"SILENTGATE_KERNELS": "compiled", "SILENTGATE_KERNELS_DIR": str(base)}
    if jit:
        env |= {"SILENTGATE_KERNELS": "jit"}
    done = subprocess.run(
        [sys.executable, "-c", IMPORTS, json.dumps(groups)], env=env, cwd=ROOT,
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return [(label, float(mb)) for label, mb in json.loads(done.stdout)]


def import_rss_mb() -> float:
    """RSS of an interpreter that has only imported the daemon, as it runs here."""
    return import_rss(None)[-1][1]


def _table(rows: list[tuple[str, float]]) -> list[str]:
    lines = ["| imported | VmRSS MB | + MB |", "|---|---:|---:|"]
    previous = 0.0
    for label, mb in rows:
        lines.append(f"| {label} | {mb:.1f} | {mb - previous:+.1f} |")
        previous = mb
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--starts", type=int, default=2, help="later starts after each first one")
    ap.add_argument("--installed", action="store_true", help="this installation, as it is")
    ap.add_argument("--broker", default="mqtt://127.0.0.1:1", help="(READY does not need one)")
    args = ap.parse_args(argv)
    print("| start | to READY s | RSS MB |\n|---|---:|---:|")
    for s in starts(args.broker, args.starts, args.installed):
        print(f"| {s.what} | {s.ready_s:.2f} | {s.rss_mb or float('nan'):.0f} |", flush=True)
    if not args.installed:
        with tempfile.TemporaryDirectory() as base:
            build(Path(base))
            print("\n" + "\n".join(_table(import_rss(Path(base)))))
        print("\n" + "\n".join(_table(import_rss(None, jit=True))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
