"""The presence stage end to end on simulated shop traffic, scored against the ground truth.

Short runs with loose bounds (the full sweep is ``bench/accuracy.py``): enough to catch an engine
that splits visits, misses them, or reports exits late.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from bench.accuracy import antennas, evaluate, neighbours, shop, to_batch
from firmware_sim.traffic import TrafficModel, generate_reads
from gateway.stages.presence import EngineParams

pytestmark = pytest.mark.kernels

DURATION = 180.0


def run(miss: float, burst: float, params: EngineParams | None = None, seed: int = 0):  # type: ignore[no-untyped-def]
    scenario = shop(seed, DURATION)
    model = TrafficModel(miss_rate=miss, burst_miss=burst, neighbours=neighbours())
    reads = generate_reads(scenario, antennas(), model, 0.0, DURATION, np.random.default_rng(seed))
    return evaluate(scenario, to_batch(reads), params or EngineParams(), tick=0.05)


@pytest.mark.parametrize(("miss", "burst"), [(0.0, 0.0), (0.3, 0.0), (0.3, 0.6)])
def test_visits_are_found_whole_and_exits_are_prompt(miss: float, burst: float) -> None:
    score = run(miss, burst)
    assert score.f1 >= 0.98, score.summary()
    assert score.exit_latency_p95 <= 2.0, score.summary()
    assert score.enter_latency_p95 <= 1.0, score.summary()


def test_a_short_fixed_window_splits_bursty_visits_where_the_adaptive_one_does_not() -> None:
    fixed = dataclasses.replace(EngineParams(), min_window_s=0.5, max_window_s=0.5)
    assert run(0.3, 0.6, fixed).f1 < run(0.3, 0.6).f1 - 0.1
