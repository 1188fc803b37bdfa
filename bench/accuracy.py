"""Visit accuracy of the presence engine against fixed-window baselines, over a miss-rate sweep.

Run: ``.venv/bin/python -m bench.accuracy [--seeds 3] [--duration 600] [--burst 0.0]``

Each seed draws one shop (``firmware_sim.scenario``) and, per miss rate, one read stream
(``firmware_sim.traffic``); every engine sees the same streams. The baselines are the same stage
with the exit window pinned to a fixed W (no adaptation), so the comparison isolates the window.
The pipeline is simulated as the daemon runs it: a kernel call every ``--tick`` seconds of reads,
and transitions counted as seen at the end of that tick.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence

import numpy as np

from firmware_sim.scenario import Scenario
from firmware_sim.traffic import Antenna, SimReads, TrafficModel, generate_reads
from gateway.presence import EngineParams, PresenceStage, ZoneParams
from gateway.reads import ReadBatch
from gateway.scoring import Score, TrueVisit, score, visits_from_transitions
from gateway.transitions import Transition

ZONES = ("entrance", "shelf-a", "shelf-b", "checkout")
FIXED_WINDOWS = (0.5, 1.0, 2.0, 3.0, 5.0)
MISS_RATES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)


def shop(seed: int, duration: float) -> Scenario:
    return Scenario.generate(seed=seed, duration=duration, zones=ZONES, customers=40, items=60)


def antennas() -> list[Antenna]:
    return [Antenna("uhf", i + 1, z) for i, z in enumerate(ZONES)]


def neighbours() -> dict[str, tuple[str, ...]]:
    # Zones along an aisle: each one's antenna also hears tags in the zones next to it.
    return {z: tuple(ZONES[j] for j in (i - 1, i + 1) if 0 <= j < len(ZONES)) for i, z in
            enumerate(ZONES)}  # fmt: skip


def to_batch(reads: SimReads) -> ReadBatch:
    zone_of = np.arange(len(ZONES), dtype=np.int32)  # antenna i serves zone i
    return ReadBatch(
        t=reads.t,
        subject=reads.subject,
        zone=zone_of[reads.antenna],
        rssi=reads.rssi,
        device=np.zeros(len(reads), np.int32),
        antenna=(reads.antenna + 1).astype(np.int16),
    )


def replay(
    stage: PresenceStage, batch: ReadBatch, duration: float, tick: float
) -> list[tuple[Transition, float]]:
    seen: list[tuple[Transition, float]] = []
    ends = np.arange(tick, duration + tick / 2, tick)
    cuts = np.searchsorted(batch.t, ends, side="left")
    lo = 0
    columns = (batch.t, batch.subject, batch.zone, batch.rssi, batch.device, batch.antenna)
    for now, hi in zip(ends.tolist(), cuts.tolist(), strict=True):
        part = ReadBatch(*(col[lo:hi] for col in columns))
        seen += [(tr, now) for tr in stage.feed(part, now)]
        lo = hi
    return seen


def evaluate(scenario: Scenario, batch: ReadBatch, params: EngineParams, tick: float) -> Score:
    stage = PresenceStage([ZoneParams(z) for z in ZONES], params)
    seen = replay(stage, batch, scenario.duration, tick)
    names = [s.raw_id for s in scenario.subjects]
    detected = visits_from_transitions(seen, names, ZONES)
    truth = [TrueVisit(v.subject, v.zone, v.start, v.end) for v in scenario.visits]
    return score(truth, detected)


def engines() -> dict[str, EngineParams]:
    adaptive = EngineParams()
    out = {"adaptive": adaptive}
    for w in FIXED_WINDOWS:
        out[f"fixed {w:g}s"] = dataclasses.replace(adaptive, min_window_s=w, max_window_s=w)
    return out


def pooled(scores: Sequence[Score]) -> tuple[float, float, float]:
    """Mean F1, worst exit p95 and worst enter p95 over seeds."""
    f1 = float(np.mean([s.f1 for s in scores]))
    return f1, max(s.exit_latency_p95 for s in scores), max(s.enter_latency_p95 for s in scores)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=600.0)
    ap.add_argument("--burst", type=float, default=0.0, help="P(miss | previous attempt missed)")
    ap.add_argument("--rate", type=float, default=25.0, help="read attempts per tag per second")
    ap.add_argument("--tick", type=float, default=0.05)
    ap.add_argument("--miss", type=float, nargs="*", default=list(MISS_RATES))
    args = ap.parse_args(argv)
    print(f"# {args.seeds} seeds x {args.duration:g}s, rate {args.rate:g} Hz, burst {args.burst}")
    print(f"{'miss':>5} {'engine':<11} {'F1':>6} {'exit p95':>9} {'enter p95':>10}")
    for miss in args.miss:
        model = TrafficModel(
            read_rate_hz=args.rate, miss_rate=miss, burst_miss=args.burst,
            neighbours=neighbours(),
        )  # fmt: skip
        results: dict[str, list[Score]] = {name: [] for name in engines()}
        for seed in range(args.seeds):
            scenario = shop(seed, args.duration)
            rng = np.random.default_rng(seed)
            batch = to_batch(generate_reads(scenario, antennas(), model, 0.0, args.duration, rng))
            for name, params in engines().items():
                results[name].append(evaluate(scenario, batch, params, args.tick))
        for name, scores in results.items():
            f1, exit_p95, enter_p95 = pooled(scores)
            print(f"{miss:>5.2f} {name:<11} {f1:>6.4f} {exit_p95:>9.2f} {enter_p95:>10.2f}")


if __name__ == "__main__":
    main()
