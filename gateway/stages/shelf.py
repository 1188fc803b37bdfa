"""The shelf stage: scale readings in, settled weight changes out.

A hand on a shelf makes the load cell ring (a damped wobble of a hundred grams or more for about a
second), and the cell is never quite still (noise, creep). A change is reported only once the
shelf has settled, and only if it is significant:

* **settled**: the readings of the last ``window_s`` seconds (at least ``MIN_SAMPLES`` of them,
  covering the whole window) lie within ``stable_g`` of each other, peak to peak. Their mean is
  the settled level. A silence longer than ``max_gap_s`` (a scale that stopped answering) empties
  the window, so a level is never made of readings from both sides of an outage.
* **significant**: the settled level differs from the last reported level by ``min_delta_g`` or
  more. A smaller difference is taken as the new level without a report, so slow drift and creep
  are followed and never add up to an event.

``min_delta_g`` must exceed ``stable_g``: noise whose peak-to-peak stays within ``stable_g`` gives
settled levels within ``stable_g`` of each other, so it can never make a change.
The first settled level after start is the baseline and is not reported. A change's time is
the first reading that left the old level by more than ``stable_g``: when the hand lifted the
item, not when the shelf stopped wobbling. docs/shelves.md has the tuning.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import fmean
from typing import Final

MIN_SAMPLES: Final = 3  # fewer readings than this say nothing about stability


@dataclass(frozen=True, slots=True)
class SettleParams:
    window_s: float = 0.5
    stable_g: float = 5.0  # peak-to-peak spread a settled window may have
    min_delta_g: float = 10.0
    max_gap_s: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.stable_g < self.min_delta_g:
            raise ValueError("need 0 < stable_g < min_delta_g")
        if self.window_s <= 0 or self.max_gap_s <= 0:
            raise ValueError("window_s and max_gap_s must be positive")


@dataclass(frozen=True, slots=True)
class WeightSample:
    t: float  # monotonic seconds, when the reading arrived
    device: int  # index of the scale in the config's device list
    grams: float


@dataclass(frozen=True, slots=True)
class WeightChange:
    device: int
    zone: int
    t: float  # when the load started to move away from the old level
    settled_at: float
    grams: float  # the new settled level
    delta_g: float  # new level minus the last reported one


@dataclass(frozen=True, slots=True)
class Settled:
    moved_at: float
    grams: float
    delta_g: float


class SettleDetector:
    """One scale: readings in time order -> the settled changes they complete."""

    def __init__(self, params: SettleParams) -> None:
        self.params = params
        self.level: float | None = None  # the settled level last taken
        self._window: deque[tuple[float, float]] = deque()
        self._moved_at: float | None = None

    def feed(self, t: float, grams: float) -> Settled | None:
        self._push(t, grams)
        if self._moved_at is None and self._departs(grams):
            self._moved_at = t
        level = self._settled_level()
        if level is None:
            return None
        previous, self.level = self.level, level
        moved_at, self._moved_at = self._moved_at, None
        if previous is None or abs(level - previous) < self.params.min_delta_g:
            return None
        return Settled(
            self._window[0][0] if moved_at is None else moved_at, level, level - previous
        )

    def quiet(self, grams: float) -> bool:
        """Can this reading, fed now, complete no change? True for a reading of a settled
        shelf (a level taken, no move begun) within ``stable_g`` of that level."""
        return self._moved_at is None and self.level is not None and not self._departs(grams)

    def _departs(self, grams: float) -> bool:
        return self.level is not None and abs(grams - self.level) > self.params.stable_g

    def _push(self, t: float, grams: float) -> None:
        window, p = self._window, self.params
        if window and t - window[-1][0] > p.max_gap_s:
            window.clear()
        window.append((t, grams))
        # Keep one reading at or before the window's start, so "covers the window" is exact.
        while len(window) > 1 and window[1][0] <= t - p.window_s:
            window.popleft()

    def _settled_level(self) -> float | None:
        window = self._window
        if len(window) < MIN_SAMPLES or window[-1][0] - window[0][0] < self.params.window_s:
            return None
        values = [g for _, g in window]
        if max(values) - min(values) > self.params.stable_g:
            return None
        return fmean(values)


@dataclass(frozen=True, slots=True)
class ScaleSpec:
    device: int
    zone: int
    params: SettleParams = SettleParams()


class ShelfStage:
    """One detector per scale. No I/O and no clock: time is the readings' own."""

    def __init__(self, scales: Sequence[ScaleSpec]) -> None:
        self._zones = {s.device: s.zone for s in scales}
        self._detectors = {s.device: SettleDetector(s.params) for s in scales}

    def feed(self, samples: Sequence[WeightSample], now: float) -> list[WeightChange]:
        """``now`` is unused: settling is decided by the readings' own times."""
        changes = []
        for s in samples:
            settled = self._detectors[s.device].feed(s.t, s.grams)
            if settled is not None:
                zone = self._zones[s.device]
                changes.append(
                    WeightChange(
                        s.device, zone, settled.moved_at, s.t, settled.grams, settled.delta_g
                    )
                )
        return changes

    def level(self, device: int) -> float | None:
        return self._detectors[device].level

    def has_news(self, samples: Sequence[WeightSample]) -> bool:
        """Could these readings make a change if fed now? Not when each is of a settled shelf
        and near its level (``SettleDetector.quiet``): those may wait, and fed later, by their
        own times, they decide the same."""
        return not all(self._detectors[s.device].quiet(s.grams) for s in samples)


@dataclass(slots=True)
class WeightCollector:
    """Readings between pipeline runs, like ``ReadCollector``; the event loop owns it."""

    _samples: list[WeightSample] = field(default_factory=list)

    def add(self, t: float, device: int, grams: float) -> None:
        self._samples.append(WeightSample(t, device, grams))

    def __len__(self) -> int:
        return len(self._samples)

    def since(self, start: int) -> list[WeightSample]:
        """The readings added after the first ``start`` held."""
        return self._samples[start:]

    def drain(self) -> list[WeightSample]:
        samples, self._samples = self._samples, []
        return samples
