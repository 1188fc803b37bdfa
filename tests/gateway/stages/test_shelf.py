"""The settling detector: noise and wobble make no events, settled steps always make one."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_sim.shelf import Shelf
from gateway.stages.shelf import (
    ScaleSpec,
    Settled,
    SettleDetector,
    SettleParams,
    ShelfStage,
    WeightCollector,
    WeightSample,
)

PERIOD_S = 0.1  # 10 Hz, the session's default poll rate
PARAMS = SettleParams(window_s=0.5, stable_g=5.0, min_delta_g=10.0)
SETTLED_AFTER = math.ceil(PARAMS.window_s / PERIOD_S) + 1  # readings a level needs


def feed(detector: SettleDetector, values: list[float], t0: float = 0.0) -> list[Settled]:
    out = []
    for i, g in enumerate(values):
        s = detector.feed(t0 + i * PERIOD_S, g)
        if s is not None:
            out.append(s)
    return out


# Noise whose peak-to-peak stays within stable_g: uniform in +-stable_g/2.
noise = st.lists(st.floats(-PARAMS.stable_g / 2, PARAMS.stable_g / 2), min_size=1, max_size=200)
loads = st.floats(-5000.0, 50000.0)


@given(load=loads, jitter=noise)
def test_noise_within_the_stability_threshold_never_makes_an_event(
    load: float, jitter: list[float]
) -> None:
    assert feed(SettleDetector(PARAMS), [load + n for n in jitter]) == []


@given(
    before=loads,
    step=st.floats(PARAMS.min_delta_g + PARAMS.stable_g, 20000.0),
    down=st.booleans(),
    jitter=st.lists(
        st.floats(-PARAMS.stable_g / 2, PARAMS.stable_g / 2),
        min_size=2 * SETTLED_AFTER,
        max_size=60,
    ),
)
def test_a_step_gives_exactly_one_change_once_settled(
    before: float, step: float, down: bool, jitter: list[float]
) -> None:
    delta = -step if down else step
    half = len(jitter) // 2
    values = [before + n for n in jitter[:half]] + [before + delta + n for n in jitter[half:]]
    (change,) = feed(SettleDetector(PARAMS), values)
    assert abs(change.delta_g - delta) <= PARAMS.stable_g
    assert change.moved_at == pytest.approx(half * PERIOD_S)  # the first reading after the step


@given(
    before=loads,
    after=loads,
    disturbance=st.lists(st.floats(-3000.0, 3000.0), max_size=40),
    jitter=st.lists(
        st.floats(-PARAMS.stable_g / 2, PARAMS.stable_g / 2),
        min_size=SETTLED_AFTER,
        max_size=40,
    ),
)
def test_after_any_disturbance_the_level_follows_the_load(
    before: float, after: float, disturbance: list[float], jitter: list[float]
) -> None:
    """Whatever a hand does in between, the changes add up to the load's, within noise."""
    detector = SettleDetector(PARAMS)
    values = [before] * SETTLED_AFTER + [before + d for d in disturbance]
    changes = feed(detector, values + [after + n for n in jitter])
    assert detector.level is not None
    assert abs(detector.level - after) <= PARAMS.stable_g / 2
    reported = before + sum(c.delta_g for c in changes)
    assert abs(reported - after) < PARAMS.min_delta_g + PARAMS.stable_g


def test_a_slow_drift_is_followed_without_events() -> None:
    detector = SettleDetector(PARAMS)
    drift = [1000.0 + 0.05 * i for i in range(2000)]  # 100 g over 200 s: creep, not goods
    assert feed(detector, drift) == []
    assert detector.level == pytest.approx(1100.0, abs=1.0)


def test_an_outage_empties_the_window() -> None:
    detector = SettleDetector(PARAMS)
    feed(detector, [500.0] * 10)
    # The scale comes back after a minute with a different load: two readings are no level.
    assert detector.feed(70.0, 800.0) is None
    assert detector.feed(70.1, 800.0) is None
    assert [s.delta_g for s in feed(detector, [800.0] * 6, t0=70.2)] == [300.0]


def test_the_simulated_shelf_wobble_makes_one_change_per_item() -> None:
    """The simulator's shelf (a 150 g damped 3 Hz wobble per touch, 0.5 g noise), polled at
    10 Hz: placing and taking items each give one change of the item's weight; a touch alone
    gives none."""
    shelf = Shelf(noise_g=0.5, seed=3)
    stage = ShelfStage([ScaleSpec(device=2, zone=1, params=PARAMS)])
    actions = {1.0: ("place", "soup", 410.0), 5.0: ("touch", "", 0.0), 9.0: ("take", "soup", 0.0)}
    changes = []
    for i in range(140):
        t = round(i * PERIOD_S, 3)
        if t in actions:
            what, item, grams = actions[t]
            if what == "place":
                shelf.place(item, grams, t)
            elif what == "take":
                shelf.take(item, t)
            else:
                shelf.touch(t)
        collector = WeightCollector()
        collector.add(t, 2, shelf.measure(t))
        changes += stage.feed(collector.drain(), t)
    assert [round(c.delta_g) for c in changes] == pytest.approx([410, -410], abs=2)
    assert [(c.device, c.zone) for c in changes] == [(2, 1), (2, 1)]
    assert changes[0].t == pytest.approx(1.0, abs=0.15)
    assert changes[1].t == pytest.approx(9.0, abs=0.15)
    assert all(c.settled_at - c.t < 2.0 for c in changes)


def test_params_refuse_a_delta_that_noise_could_reach() -> None:
    with pytest.raises(ValueError, match="stable_g < min_delta_g"):
        SettleParams(stable_g=10.0, min_delta_g=10.0)


def test_readings_of_several_scales_are_kept_apart() -> None:
    stage = ShelfStage([ScaleSpec(0, 0, PARAMS), ScaleSpec(1, 1, PARAMS)])
    rng = random.Random(1)
    collector = WeightCollector()
    for i in range(30):
        t = i * PERIOD_S
        collector.add(t, 0, 200.0 + rng.uniform(-1, 1))
        collector.add(t, 1, (0.0 if i < 15 else 750.0) + rng.uniform(-1, 1))
    assert len(collector) == 60
    (change,) = stage.feed(collector.drain(), 3.0)
    assert (change.device, change.zone, round(change.delta_g / 10)) == (1, 1, 75)
    assert stage.level(0) == pytest.approx(200.0, abs=1.0)


@given(
    st.lists(st.tuples(st.sampled_from([0.0, 3.0, 250.0, 262.0, 900.0]), st.integers(1, 25)),
             min_size=1, max_size=8),
    st.lists(st.floats(-PARAMS.stable_g / 2, PARAMS.stable_g / 2), min_size=1, max_size=50),
)  # fmt: skip
def test_readings_held_while_the_shelf_is_quiet_make_the_same_changes(
    steps: list[tuple[float, int]], wobble: list[float]
) -> None:
    """The pipeline feeds a still shelf's readings only with a run that something else makes
    due (``ShelfStage.has_news``, at most 10 readings late here): the changes, and their times,
    are those of readings fed one by one."""
    values = [load + wobble[i % len(wobble)] for load, n in steps for i in range(n)]
    one_by_one, held = ShelfStage([ScaleSpec(0, 0, PARAMS)]), ShelfStage([ScaleSpec(0, 0, PARAMS)])
    expected, got = [], []
    waiting: list[WeightSample] = []
    for i, grams in enumerate(values):
        sample = WeightSample(i * PERIOD_S, 0, grams)
        expected += one_by_one.feed([sample], sample.t)
        waiting.append(sample)
        if held.has_news(waiting) or len(waiting) >= 10:
            got += held.feed(waiting, sample.t)
            waiting = []
    got += held.feed(waiting, len(values) * PERIOD_S)
    assert got == expected


def test_a_settled_shelf_near_its_level_has_no_news_and_a_hand_on_it_has() -> None:
    stage = ShelfStage([ScaleSpec(0, 0, PARAMS)])
    baseline = [WeightSample(i * PERIOD_S, 0, 500.0) for i in range(SETTLED_AFTER)]
    assert stage.has_news(baseline)  # no level yet
    stage.feed(baseline, baseline[-1].t)
    t = baseline[-1].t + PERIOD_S
    assert not stage.has_news([WeightSample(t, 0, 503.0)])
    assert stage.has_news([WeightSample(t, 0, 470.0)])  # a hand lifting an item
