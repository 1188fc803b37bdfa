"""A shelf on a load cell: what the scale simulator weighs, with its ground truth.

The true load is the sum of the items on the shelf. What the cell reports adds two things a
fusion stage has to live with: a settling wobble whenever a hand touches the shelf (a damped
oscillation that starts at the touch and is gone after ``settle_s``), and Gaussian noise of
``noise_g``. Placing or taking an item is a touch. Times are on the caller's clock (the event
loop's, in the simulator); the noise is drawn from a seeded generator, so a run can be replayed.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Final

WOBBLE_HZ: Final = 3.0  # a loaded shelf board rings at a few hertz
WOBBLE_TAU_S: Final = 0.25


@dataclass(frozen=True, slots=True)
class ShelfEvent:
    t: float
    item: str
    delta_g: float  # + placed, - taken


@dataclass(slots=True)
class Shelf:
    noise_g: float = 0.5
    touch_g: float = 150.0  # initial wobble amplitude of a touch
    settle_s: float = 1.0
    seed: int | None = None
    items: dict[str, float] = field(default_factory=dict)
    events: list[ShelfEvent] = field(default_factory=list)
    _touches: list[float] = field(default_factory=list)
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def place(self, item: str, grams: float, now: float) -> None:
        if item in self.items:
            raise ValueError(f"{item!r} is already on the shelf")
        self.items[item] = grams
        self.events.append(ShelfEvent(now, item, grams))
        self.touch(now)

    def take(self, item: str, now: float) -> float:
        grams = self.items.pop(item)
        self.events.append(ShelfEvent(now, item, -grams))
        self.touch(now)
        return grams

    def touch(self, now: float) -> None:
        """A hand on the shelf without changing its load (rummaging, leaning)."""
        self._touches.append(now)

    @property
    def true_g(self) -> float:
        return sum(self.items.values())

    def settled(self, now: float) -> bool:
        return all(now - t >= self.settle_s for t in self._touches)

    def measure(self, now: float) -> float:
        """What the load cell reads at ``now``: true load + wobble + noise."""
        self._touches = [t for t in self._touches if now - t < self.settle_s]
        wobble = sum(self._wobble(now - t) for t in self._touches if now >= t)
        return self.true_g + wobble + self._rng.gauss(0.0, self.noise_g)

    def _wobble(self, age: float) -> float:
        decay = math.exp(-age / WOBBLE_TAU_S)
        return self.touch_g * decay * math.cos(2 * math.pi * WOBBLE_HZ * age)
