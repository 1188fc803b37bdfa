"""Counters the daemon keeps about itself, cheap enough for the hot path.

The pipeline, the uplink and the device contexts only add to plain integers and these small
fixed-bucket histograms; nothing is formatted until somebody looks. Two readers look: the
retained status (``counters`` there) and, when enabled, the Prometheus endpoint
(``gateway/metrics.py``). Both read the same numbers, so they cannot disagree.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

# Seconds: from sub-millisecond kernel calls to publishes that wait on a slow broker.
DEFAULT_BOUNDS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)


@dataclass(slots=True)
class Histogram:
    """Cumulative counts per upper bound, as Prometheus histograms report them."""

    bounds: Sequence[float] = DEFAULT_BOUNDS
    counts: list[int] = field(default_factory=list)
    count: int = 0
    total: float = 0.0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.count += 1
        self.total += value

    def buckets(self) -> list[tuple[str, int]]:
        """(upper bound, cumulative count) pairs, ending with +Inf."""
        running, out = 0, []
        for bound, n in zip([*map(str, self.bounds), "+Inf"], self.counts, strict=True):
            running += n
            out.append((bound, running))
        return out

    def quantile(self, q: float) -> float | None:
        """The upper bound of the bucket holding quantile ``q``; None before any observation."""
        if not self.count:
            return None
        target, running = q * self.count, 0
        for bound, n in zip(self.bounds, self.counts, strict=False):
            running += n
            if running >= target:
                return bound
        return float("inf")
