from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_sim.epc import is_uhf_epc
from firmware_sim.scenario import Scenario, Subject, Visit
from firmware_sim.traffic import Antenna, TrafficModel, _hit_mask, _streams, generate_reads

ANTENNAS = (Antenna("door", 1, "entrance"), Antenna("door", 2, "shelf-a"))
ONE_TAG = Scenario(
    zones=("entrance", "shelf-a"),
    subjects=(Subject("C0FFEE000000000000000001", "customer"),),
    visits=(Visit("C0FFEE000000000000000001", "shelf-a", 10.0, 410.0),),
    duration=500.0,
)


def reads(model: TrafficModel, seed: int = 1, scenario: Scenario = ONE_TAG):
    return generate_reads(
        scenario, ANTENNAS, model, 0.0, scenario.duration, np.random.default_rng(seed)
    )


def test_reads_only_while_present_on_the_zone_antenna() -> None:
    r = reads(TrafficModel(bleed_rate_hz=0.0))
    assert len(r) > 0
    assert np.all(np.diff(r.t) >= 0)
    assert np.all((r.t >= 10.0) & (r.t < 410.0))
    assert set(r.antenna.tolist()) == {1}
    assert set(r.subject.tolist()) == {0}


@pytest.mark.parametrize("rate", [5.0, 25.0, 60.0])
def test_read_rate(rate: float) -> None:
    r = reads(TrafficModel(read_rate_hz=rate, bleed_rate_hz=0.0))
    expected = rate * 400.0
    # A jittered rhythm: the count is within one read of L * rate, far tighter than Poisson.
    assert abs(len(r) - expected) <= 2
    gaps = np.diff(r.t)
    assert gaps.mean() == pytest.approx(1 / rate, rel=0.01)
    assert gaps.min() > 0.1 / rate


@pytest.mark.parametrize(("miss", "burst"), [(0.1, 0.0), (0.3, 0.0), (0.2, 0.8), (0.5, 0.9)])
def test_miss_rate_within_bounds(miss: float, burst: float) -> None:
    model = TrafficModel(miss_rate=miss, burst_miss=burst, bleed_rate_hz=0.0)
    expected = 25.0 * 400.0 * (1 - miss)
    # Bursts make the count's variance grow by about (1 + p) / (1 - p); allow 5 sigma.
    p = max(burst, miss)
    sd = np.sqrt(25.0 * 400.0 * miss * (1 - miss) * (1 + p) / (1 - p))
    counts = [len(reads(model, seed)) for seed in range(5)]
    assert all(abs(c - expected) < 5 * sd for c in counts), counts


def run_lengths(mask: np.ndarray, value: bool) -> np.ndarray:
    step = np.diff(np.r_[False, mask == value, False].astype(np.int8))
    return (np.flatnonzero(step == -1) - np.flatnonzero(step == 1)).astype(np.float64)


@pytest.mark.parametrize(("miss", "burst"), [(0.2, 0.0), (0.2, 0.8), (0.05, 0.95)])
def test_misses_come_in_bursts(miss: float, burst: float) -> None:
    mask = _hit_mask(400_000, miss, burst, np.random.default_rng(3))
    assert 1 - mask.mean() == pytest.approx(miss, abs=0.02)
    stay = max(burst, miss)
    assert run_lengths(mask, False).mean() == pytest.approx(1 / (1 - stay), rel=0.08)


def test_extreme_miss_rates() -> None:
    rng = np.random.default_rng(0)
    assert _hit_mask(1000, 0.0, 0.9, rng).all()
    assert not _hit_mask(1000, 1.0, 0.0, rng).any()
    assert 0 < _hit_mask(1000, 0.5, 1.0, rng).size == 1000


def test_rssi_distribution() -> None:
    r = reads(TrafficModel(rssi_mean_dbm=-60.0, rssi_sd_db=4.0, bleed_rate_hz=0.0))
    assert r.rssi.mean() == pytest.approx(-60.0, abs=0.3)
    assert r.rssi.std() == pytest.approx(4.0, rel=0.05)


def test_bleed_reaches_neighbour_antennas_faintly() -> None:
    model = TrafficModel(neighbours={"shelf-a": ("entrance",)}, bleed_rate_hz=2.0)
    r = reads(model)
    bleed = r.antenna == 0
    assert bleed.sum() == pytest.approx(2.0 * 400.0, abs=2)
    assert r.rssi[bleed].mean() == pytest.approx(-64.0, abs=0.5)
    assert r.rssi[~bleed].mean() == pytest.approx(-52.0, abs=0.5)


def test_window_and_determinism() -> None:
    model = TrafficModel(miss_rate=0.2, burst_miss=0.5)
    a = generate_reads(ONE_TAG, ANTENNAS, model, 100.0, 101.0, np.random.default_rng(9))
    b = generate_reads(ONE_TAG, ANTENNAS, model, 100.0, 101.0, np.random.default_rng(9))
    assert np.all((a.t >= 100.0) & (a.t < 101.0))
    assert np.array_equal(a.t, b.t)
    assert np.array_equal(a.rssi, b.rssi)
    empty = generate_reads(ONE_TAG, ANTENNAS, model, 450.0, 460.0, np.random.default_rng(9))
    assert len(empty) == 0


def test_million_reads_well_under_a_second() -> None:
    scenario = Scenario.generate(
        seed=1, duration=3600.0, zones=("entrance", "shelf-a", "shelf-b"), customers=300, items=60
    )
    antennas = (*ANTENNAS, Antenna("door", 3, "shelf-b"))
    model = TrafficModel(miss_rate=0.1, burst_miss=0.7, neighbours={"shelf-a": ("shelf-b",)})
    # CPU time, not wall time: the suite shares two cores with other work.
    started = time.process_time()
    r = generate_reads(scenario, antennas, model, 0.0, 3600.0, np.random.default_rng(1))
    elapsed = time.process_time() - started
    assert len(r) > 1_000_000
    assert elapsed < 1.0


SHOP = Scenario.generate(
    seed=2, duration=120.0, zones=("entrance", "shelf-a", "shelf-b"), customers=6, items=6
)
SHOP_ANTENNAS = (
    Antenna("door", 1, "entrance"),
    Antenna("door", 2, "shelf-a"),
    Antenna("door", 3, "shelf-b"),
)


@given(
    t0=st.floats(0.0, 110.0),
    span=st.floats(0.0, 30.0),
    miss=st.floats(0.0, 1.0),
    burst=st.floats(0.0, 1.0),
    bleed=st.floats(0.0, 10.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_every_read_is_of_a_subject_in_or_next_to_the_antenna_zone(
    t0: float, span: float, miss: float, burst: float, bleed: float, seed: int
) -> None:
    model = TrafficModel(
        miss_rate=miss,
        burst_miss=burst,
        bleed_rate_hz=bleed,
        neighbours={"shelf-a": ("shelf-b",), "shelf-b": ("shelf-a",)},
    )
    r = generate_reads(SHOP, SHOP_ANTENNAS, model, t0, t0 + span, np.random.default_rng(seed))
    assert np.all(np.diff(r.t) >= 0)
    assert np.all((r.t >= t0) & (r.t < t0 + span))
    for t, s, a in zip(r.t[:50], r.subject[:50], r.antenna[:50], strict=True):
        zone = SHOP.present_at(float(t)).get(SHOP.subjects[s].raw_id)
        antenna_zone = SHOP_ANTENNAS[a].zone
        assert zone is not None
        assert zone == antenna_zone or antenna_zone in model.neighbours.get(zone, ())


def streams_by_visit(
    scenario: Scenario, antennas: tuple[Antenna, ...], model: TrafficModel, t0: float, t1: float
) -> list[tuple[float, float, float, float, int, int]]:
    """The (visit, hearing antenna) rows spelled out one visit at a time, for comparison."""
    index = {s.raw_id: i for i, s in enumerate(scenario.subjects)}
    rows = []
    for v in scenario.visits:
        if not (v.start < t1 and v.end > t0 and is_uhf_epc(v.subject)):
            continue
        for a, antenna in enumerate(antennas):
            if antenna.zone == v.zone:
                hear = (model.read_rate_hz, model.rssi_mean_dbm)
            elif antenna.zone in model.neighbours.get(v.zone, ()):
                hear = (model.bleed_rate_hz, model.rssi_mean_dbm - model.bleed_rssi_drop_db)
            else:
                continue
            if hear[0] > 0:
                rows.append((max(v.start, t0), min(v.end, t1), *hear, index[v.subject], a))
    return rows


CARD_SHOP = Scenario.generate(
    seed=5, duration=300.0, zones=("entrance", "shelf-a", "shelf-b"), customers=12, items=8,
    card_customers=4,
)  # fmt: skip


@given(
    t0=st.floats(-10.0, 310.0),
    span=st.floats(0.0, 60.0),
    bleed=st.sampled_from([0.0, 2.0]),
    antennas=st.lists(
        st.sampled_from(["entrance", "shelf-a", "shelf-b", "stockroom"]), min_size=1, max_size=5
    ),
)
def test_streams_are_the_visits_overlapping_the_window_and_their_antennas(
    t0: float, span: float, bleed: float, antennas: list[str]
) -> None:
    # The per-visit table is looked up with arrays (a day's scenario is tens of thousands of
    # visits, asked for every few milliseconds); it must give the rows of a plain pass.
    ants = tuple(Antenna("r", i + 1, z) for i, z in enumerate(antennas))
    model = TrafficModel(bleed_rate_hz=bleed, neighbours={"shelf-a": ("shelf-b", "entrance")})
    got = _streams(CARD_SHOP, ants, model, t0, t0 + span)
    cols = (got.start, got.end, got.rate, got.rssi, got.subject, got.antenna)
    rows = list(zip(*(c.tolist() for c in cols), strict=True))
    want = streams_by_visit(CARD_SHOP, ants, model, t0, t0 + span)
    # Row for row, in the same order: the random draws that follow go by row.
    assert rows == want
