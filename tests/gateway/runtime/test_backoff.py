"""The reconnect backoff is what docs/mqtt.md says: equal jitter, 0.5 s doubling to 30 s."""

from __future__ import annotations

import random

from gateway.runtime.supervise import Backoff


def test_each_wait_lies_in_the_upper_half_of_a_doubling_capped_ceiling() -> None:
    backoff = Backoff(initial=0.5, cap=30.0, rng=random.Random(1))
    ceilings = [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    for _ in range(200):
        waits = [backoff.next() for _ in ceilings]
        assert all(c / 2 <= w <= c for w, c in zip(waits, ceilings, strict=True)), waits
        backoff.reset()


def test_the_draws_spread_over_the_whole_upper_half() -> None:
    backoff = Backoff(initial=8.0, cap=8.0, rng=random.Random(2))
    waits = [backoff.next() for _ in range(2000)]
    assert min(waits) < 4.1
    assert max(waits) > 7.9


def test_a_device_dead_for_days_keeps_its_cap() -> None:
    # 2.0**1024 overflows a float: ~1,030 retries at 30 s (8.5 hours) used to raise here.
    backoff = Backoff(initial=0.5, cap=30.0, rng=random.Random(3))
    waits = [backoff.next() for _ in range(5000)]
    assert 15.0 <= waits[-1] <= 30.0
