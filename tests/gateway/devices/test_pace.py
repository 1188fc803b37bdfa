"""The scale's poll pace against the simulated shelf: polled slowly while still, the settle
detection still finds every change exactly once, later by at most an idle period."""

from __future__ import annotations

import random

import pytest

from firmware_sim.shelf import Shelf
from gateway.devices.pace import PollPace
from gateway.stages.shelf import ScaleSpec, SettleParams, ShelfStage, WeightChange, WeightSample

PARAMS = SettleParams(window_s=0.5, stable_g=5.0, min_delta_g=10.0)
Action = tuple[float, str, str, float]  # t, place | take | touch, item, grams


def polled(
    actions: list[Action], until: float, fast_hz: float, idle_hz: float, seed: int
) -> tuple[list[WeightChange], list[float]]:
    """Polls of a simulated shelf at the pace's times: the changes and the poll times."""
    shelf = Shelf(noise_g=0.5, seed=seed)
    stage = ShelfStage([ScaleSpec(device=0, zone=0, params=PARAMS)])
    pace = PollPace(fast_hz, idle_hz, PARAMS.stable_g, PARAMS.window_s)
    todo = sorted(actions)
    changes, polls, t = [], [], 0.0
    while t < until:
        while todo and todo[0][0] <= t:
            at, what, item, grams = todo.pop(0)
            if what == "place":
                shelf.place(item, grams, at)
            elif what == "take":
                shelf.take(item, at)
            else:
                shelf.touch(at)
        grams = shelf.measure(t)
        changes += stage.feed([WeightSample(t, 0, grams)], t)
        polls.append(t)
        t += pace.after(t, grams)
    return changes, polls


def scenario(rng: random.Random) -> list[Action]:
    """Items placed and taken, touches between, a few seconds apart (a busy shelf)."""
    actions: list[Action] = []
    on: dict[str, float] = {}
    t = 2.0
    for k in range(12):
        t += rng.uniform(2.5, 8.0)
        roll = rng.random()
        if roll < 0.2:
            actions.append((t, "touch", "", 0.0))
        elif on and roll < 0.6:
            item = rng.choice(sorted(on))
            actions.append((t, "take", item, -on.pop(item)))
        else:
            grams = float(rng.randint(15, 1000))
            on[f"item-{k}"] = grams
            actions.append((t, "place", f"item-{k}", grams))
    return actions


@pytest.mark.parametrize("seed", range(40))
def test_every_action_makes_one_change_and_no_touch_makes_one(seed: int) -> None:
    actions = scenario(random.Random(seed))
    moves = [a for a in actions if a[1] != "touch"]
    changes, _ = polled(actions, actions[-1][0] + 5.0, 10.0, 2.0, seed)
    assert [round(c.delta_g) for c in changes] == pytest.approx([a[3] for a in moves], abs=2)
    for change, (at, *_) in zip(changes, moves, strict=True):
        # The first reading off the old level: an idle period after the hand at most, or two
        # when the wobble happens to bring the first reading back to the old load.
        assert at <= change.t <= at + 1.0 + 1e-9
        assert change.settled_at - at < 2.5


def test_a_still_shelf_is_polled_at_the_idle_rate_and_a_hand_brings_the_fast_rate_back() -> None:
    actions: list[Action] = [(30.0, "place", "soup", 410.0)]
    _, polls = polled(actions, 60.0, 10.0, 2.0, seed=1)
    still = [t for t in polls if 5.0 <= t < 30.0]
    after = [t for t in polls if 30.0 <= t < 31.5]
    assert len(still) == pytest.approx(25 * 2, abs=1)  # 2 Hz
    assert len(after) >= 13  # 10 Hz through the wobble and the settle window
    assert len([t for t in polls if 40.0 <= t < 60.0]) == pytest.approx(20 * 2, abs=1)


def test_a_load_that_creeps_away_brings_the_fast_rate_back() -> None:
    pace = PollPace(10.0, 2.0, stable_g=5.0, settle_s=0.5)
    t, grams = 0.0, 500.0
    for _ in range(20):  # still, past the first reading's fast polls
        t += pace.after(t, grams)
    assert pace.after(t, grams) == 0.5
    periods = []
    for _ in range(8):  # 1 g a poll: no two readings apart by stable_g, but the sum is
        grams += 1.0
        periods.append(pace.after(t, grams))
        t += periods[-1]
    assert periods[:5] == [0.5] * 5
    assert periods[5] == 0.1
