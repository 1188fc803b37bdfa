"""Presence kernel throughput against its plain-Python twin, and cold start with a warm cache.

Run: ``.venv/bin/python -m bench.kernels [--duration 600] [--items 400] [--batch 4096]``

Both engines consume the same simulated read stream (``firmware_sim.traffic``) in the same
batches; the twin runs on a prefix only, since it is slow, and the figures are reads per second
of each, measured in this run, and their ratio. Cold start runs a fresh interpreter that imports
the stage and warms its kernel, once on an empty cache directory and once on the filled one.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence

import numpy as np

from bench.accuracy import part_of
from firmware_sim.scenario import Scenario
from firmware_sim.traffic import Antenna, TrafficModel, generate_reads
from gateway.reads.batch import ReadBatch
from gateway.stages.kernels.twin import PresenceTwin, Read, TwinParams
from gateway.stages.presence import EngineParams, PresenceStage, ZoneParams

ZONES = ("entrance", "shelf-a", "shelf-b", "checkout")
COLD_START = """
import time
t0 = time.perf_counter()
from gateway.stages.presence import PresenceStage, ZoneParams
stage = PresenceStage([ZoneParams("a")])
stage.warm_up()
print(time.perf_counter() - t0)
"""


def stream(duration: float, items: int, seed: int = 1) -> ReadBatch:
    scenario = Scenario.generate(
        seed=seed, duration=duration, zones=ZONES, customers=items // 4, items=items
    )
    neighbours = {"shelf-a": ("shelf-b",), "shelf-b": ("shelf-a", "checkout")}
    model = TrafficModel(miss_rate=0.3, burst_miss=0.6, neighbours=neighbours)
    antennas = [Antenna("uhf", i + 1, z) for i, z in enumerate(ZONES)]
    reads = generate_reads(scenario, antennas, model, 0.0, duration, np.random.default_rng(seed))
    return ReadBatch(
        t=reads.t,
        subject=reads.subject,
        zone=reads.antenna,
        rssi=reads.rssi,
        device=np.zeros(len(reads), np.int32),
        antenna=(reads.antenna + 1).astype(np.int16),
    )


def batches(batch: ReadBatch, size: int, limit: int | None = None) -> list[tuple[ReadBatch, float]]:
    n = len(batch) if limit is None else min(limit, len(batch))
    out = []
    for lo in range(0, n, size):
        hi = min(lo + size, n)
        out.append((part_of(batch, lo, hi), float(batch.t[hi - 1])))
    return out


def kernel_rate(parts: list[tuple[ReadBatch, float]], params: EngineParams) -> tuple[float, int]:
    stage = PresenceStage([ZoneParams(z) for z in ZONES], params)
    stage.warm_up()
    reads = sum(len(b) for b, _ in parts)
    start = time.perf_counter()
    events = sum(len(stage.feed(b, now)) for b, now in parts)
    return reads / (time.perf_counter() - start), events


def twin_rate(parts: list[tuple[ReadBatch, float]], params: EngineParams) -> tuple[float, int]:
    twin = PresenceTwin(TwinParams.from_vector(params.as_array().tolist()), [5.0] * len(ZONES))
    rows: list[tuple[list[Read], float]] = [
        (list(zip(*(c.tolist() for c in (b.t, b.subject, b.zone, b.rssi, b.device, b.antenna)),
                  strict=True)), now)
        for b, now in parts
    ]  # fmt: skip
    reads = sum(len(r) for r, _ in rows)
    start = time.perf_counter()
    events = sum(len(twin.feed(r, now)[0]) for r, now in rows)
    return reads / (time.perf_counter() - start), events


def cold_start() -> tuple[float, float, float]:
    """(compile on an empty cache, load from the cache, whole process wall time when cached)."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        cmd = [sys.executable, "-c", COLD_START]
        cold = float(subprocess.run(cmd, env=env, capture_output=True, check=True).stdout)
        start = time.perf_counter()
        warm = float(subprocess.run(cmd, env=env, capture_output=True, check=True).stdout)
        return cold, warm, time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=600.0)
    ap.add_argument("--items", type=int, default=400)
    ap.add_argument("--batch", type=int, default=4096, help="reads per kernel call")
    ap.add_argument("--twin-reads", type=int, default=300_000)
    args = ap.parse_args(argv)
    params = EngineParams()
    full = stream(args.duration, args.items)
    print(f"stream: {len(full):,} reads, {args.items + args.items // 4} subjects, "
          f"batches of {args.batch}")  # fmt: skip
    fast, _ = kernel_rate(batches(full, args.batch), params)
    prefix = batches(full, args.batch, args.twin_reads)
    fast_prefix, kernel_events = kernel_rate(prefix, params)
    slow, twin_events = twin_rate(prefix, params)
    assert kernel_events == twin_events, "kernel and twin disagree"
    print(f"kernel: {fast / 1e6:8.2f} M reads/s (whole stream, one core)")
    print(f"kernel: {fast_prefix / 1e6:8.2f} M reads/s on the first {args.twin_reads:,} reads")
    print(f"twin:   {slow / 1e6:8.3f} M reads/s on the same reads")
    print(f"ratio:  {fast_prefix / slow:8.0f} x")
    cold, warm, wall = cold_start()
    print(f"start:  warm-up {cold:.2f} s on an empty cache, {warm:.2f} s from the cache "
          f"({wall:.2f} s for the whole process)")  # fmt: skip


if __name__ == "__main__":
    main()
