"""The daemon on plain-Python kernels (where numba cannot be had) beside compiled kernels.

    .venv/bin/python -m bench.twins [--max-s 10] [--store-s 60]

Each mode (``SILENTGATE_KERNELS=compiled``, then ``python``) runs the same two loads in this
run: the maximum reads/s of ``bench.e2e.max_rate`` (4 unpaced ThingMagic readers on ptys: the
rate the daemon consumes) and the CPU of ``bench.store`` (4 readers x 200 reads/s, 2 card
readers, 4 scales). The compiled kernels are built first if this installation has none.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import e2e, store
from demo.broker import BrokerProcess

ROOT = Path(__file__).resolve().parents[1]
READERS = 4


async def one_mode(broker: str, mode: str, max_s: float, store_s: float) -> str:
    os.environ["SILENTGATE_KERNELS"] = mode  # read by the daemons these loads start
    with tempfile.TemporaryDirectory() as tmp:
        best = await e2e.max_rate(broker, Path(tmp), READERS, max_s)
    with tempfile.TemporaryDirectory() as tmp:
        s = await store.store_load(broker, Path(tmp), store_s)
    return (
        f"| {mode} | {best.reads_s:,.0f} reads/s at {best.cpu_pct:.0f}% of a core | "
        f"{s.cpu_pct:.1f}% of a core, RSS {s.rss_end_mb:.0f} MB |"
    )


async def run(max_s: float, store_s: float) -> list[str]:
    lines = ["| kernels | maximum (4 pty readers) | store load |", "|---|---:|---:|"]
    with BrokerProcess("mosquitto") as broker:
        for mode in ("compiled", "python"):
            lines.append(await one_mode(broker.url, mode, max_s, store_s))
            print(lines[-1], flush=True)
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-s", type=float, default=10.0)
    ap.add_argument("--store-s", type=float, default=60.0)
    args = ap.parse_args(argv)
    subprocess.run([sys.executable, "-m", "gateway", "build-kernels"], cwd=ROOT, check=True)
    print("\n".join(asyncio.run(run(args.max_s, args.store_s))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
