"""The presence kernel against its plain-Python twin on Hypothesis-generated read streams.

Runs compiled normally and as Python under NUMBA_DISABLE_JIT=1; either way the kernel must make
exactly the twin's decisions, in the same order, with the same numbers.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.reads.batch import ReadBatch
from gateway.stages.kernels.layout import G_EXCEED, G_GAPS, K_POOL_FORGET, K_TAIL_U
from gateway.stages.kernels.smoothing import add_silence, clamp_window, prior_pool, tail_factor
from gateway.stages.kernels.twin import PresenceTwin, Read, Row, TwinParams
from gateway.stages.presence import EngineParams, PresenceStage, ZoneParams

pytestmark = pytest.mark.kernels

ZONES = [ZoneParams("a", 1.0), ZoneParams("b", 2.5), ZoneParams("c", 0.5)]
# Steps cluster around the thresholds that matter: dedup, read period, windows, dwell.
STEPS = st.one_of(
    st.sampled_from([0.0, 0.01, 0.02, 0.05, 0.1, 0.3, 0.5, 1.0, 2.0, 2.5, 5.0]),
    st.floats(0.0, 3.0, allow_nan=False),
)
RSSI = st.one_of(st.just(math.nan), st.integers(-80, -30).map(float))
READ = st.tuples(STEPS, st.integers(0, 3), st.integers(0, 2), RSSI, st.integers(0, 1))
BATCHES = st.lists(st.tuples(st.lists(READ, max_size=25), STEPS), min_size=1, max_size=8)
# Long visits: a tag read steadily with short silences, now and then in the next zone.
DENSE_STEP = st.sampled_from([0.01, 0.03, 0.04, 0.05, 0.1, 0.3, 0.8])
DENSE_READ = st.tuples(
    DENSE_STEP, st.integers(0, 1), st.sampled_from([0, 0, 0, 1]), RSSI, st.just(0)
)
DENSE = st.lists(
    st.tuples(st.lists(DENSE_READ, min_size=20, max_size=80), DENSE_STEP), min_size=1, max_size=6
)
PARAMS = st.builds(
    EngineParams,
    delta=st.sampled_from([0.2, 1e-3, 1e-6]),
    dedup_s=st.sampled_from([0.0, 0.02]),
    enter_reads=st.integers(1, 3),
    hysteresis=st.sampled_from([0.0, 0.5]),
    prior_gaps=st.sampled_from([1.0, 200.0]),
    pool_forget=st.sampled_from([0.0, 0.1]),
    min_window_s=st.sampled_from([0.0, 0.3]),
    max_window_s=st.sampled_from([1.0, 2.0, 50.0]),
    long_reads=st.sampled_from([3.0, 250.0]),
    prior_excess=st.sampled_from([0.5, 2.0]),
)


def comparable(rows: list[Row]) -> list[tuple[object, ...]]:
    return [tuple(None if isinstance(x, float) and math.isnan(x) else x for x in r) for r in rows]


def materialise(batches):  # type: ignore[no-untyped-def]
    """Relative steps -> absolute times; returns [(ReadBatch, twin reads, now)]."""
    clock, out = 100.0, []
    for rows, wait in batches:
        twin_reads: list[Read] = []
        for step, s, z, rssi, dev in rows:
            clock += step
            twin_reads.append((clock, s, z, float(np.float32(rssi)), dev, z + 1))
        clock += wait
        cols = list(zip(*twin_reads, strict=True)) if twin_reads else [[]] * 6
        batch = ReadBatch.from_columns(*(list(c) for c in cols))
        out.append((batch, twin_reads, clock))
    return out


@given(st.one_of(BATCHES, DENSE), PARAMS, st.sampled_from([math.inf, 3.0, 8.0]))
def test_kernel_matches_twin(batches, params: EngineParams, forget: float) -> None:  # type: ignore[no-untyped-def]
    # Forgetting (between kernel calls) must agree too: a forgotten subject's next read starts
    # from nothing in both.
    forget = max(forget, params.max_window_s + 0.5, params.rejoin_s + 0.5)
    stage = PresenceStage(ZONES, params, forget_after_s=forget)
    twin = PresenceTwin(
        TwinParams.from_vector(params.as_array().tolist()), [z.dwell_s for z in ZONES],
        forget_after_s=forget,
    )  # fmt: skip
    for batch, twin_reads, now in materialise(batches):
        got = [
            (int(tr.kind), tr.subject, tr.zone, tr.t, tr.since, tr.rssi, tr.device, tr.antenna)
            for tr in stage.feed(batch, now)
        ]
        want, deadline = twin.feed(twin_reads, now)
        assert comparable(got) == comparable(want)
        assert stage.next_deadline() == (None if deadline == math.inf else deadline)


@given(BATCHES)
def test_next_deadline_is_exact(batches) -> None:  # type: ignore[no-untyped-def]
    """Nothing happens before next_deadline(); something happens at it."""
    stage = PresenceStage(ZONES)
    for batch, _, now in materialise(batches):
        stage.feed(batch, now)
    deadline = stage.next_deadline()
    if deadline is None:
        assert stage.present() == {}
        return
    assert stage.feed(ReadBatch.empty(), math.nextafter(deadline, -math.inf)) == []
    assert stage.feed(ReadBatch.empty(), deadline) != []


def pooled(silences: list[float], params: np.ndarray) -> np.ndarray:  # type: ignore[type-arg]
    pool = prior_pool(params)
    for silence in silences:
        pool[:] = add_silence(*pool, silence, params[K_TAIL_U], 1.0 - params[K_POOL_FORGET])
    return pool


@given(st.floats(0.001, 10.0), st.lists(st.floats(0.0, 50.0), max_size=50))
def test_window_is_clamped_and_grows_with_the_mean_gap(mu: float, silences: list[float]) -> None:
    engine = EngineParams()
    params = engine.as_array()
    factor, theta = tail_factor(pooled(silences, params), params)
    lo, hi, long_reads = engine.min_window_s, engine.max_window_s, engine.long_reads

    def window(mu: float, reads: float) -> float:
        return clamp_window(mu, reads, factor, theta, long_reads, lo, hi)

    w = window(mu, 10.0)
    assert lo <= w <= hi
    assert window(mu * 1.5, 10.0) >= w
    assert window(mu, 10 * long_reads) >= w  # long visits: never a shorter window


def test_long_silences_in_the_pool_widen_the_window() -> None:
    params = EngineParams(pool_forget=0.0, prior_gaps=100.0).as_array()  # the data outweighs it
    steady = pooled([1.0] * 1000, params)
    bursty = pooled([12.0 if i % 10 == 0 else 1.0 for i in range(1000)], params)
    assert tail_factor(bursty, params)[0] > 1.5 * tail_factor(steady, params)[0]


def test_the_pool_forgets() -> None:
    params = EngineParams(pool_forget=0.01).as_array()
    old = pooled([12.0] * 1000 + [1.0] * 2000, params)
    assert old[G_EXCEED] < 0.01 * old[G_GAPS]
