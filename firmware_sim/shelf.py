"""A shelf on a load cell: what the scale simulator weighs, with its ground truth.

The true load is the sum of the items on the shelf. What the cell reports adds two things a
fusion stage has to live with: a settling wobble whenever a hand touches the shelf (a damped
oscillation that starts at the touch and is gone after ``settle_s``), and Gaussian noise of
``noise_g``. Placing or taking an item is a touch. Times are on the caller's clock (the event
loop's, in the simulator); the noise is drawn from a seeded generator, so a run can be replayed.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

from firmware_sim.scenario import Scenario

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


# -- a scenario played onto shelves ---------------------------------------------------------

LIGHTEST_G: Final = 80.0
HEAVIEST_G: Final = 1200.0
SERIAL_BITS: Final = 38  # SGTIN-96: the serial is the low 38 bits; the rest names the product
RUMMAGE_AFTER_S: Final = 1.0  # a customer at a shelf touches it this long after arriving


def item_grams(raw_id: str) -> float:
    """A plausible weight, the same for every serial of one product (as on a real shelf)."""
    product = int(raw_id, 16) >> SERIAL_BITS
    return float(round(random.Random(product).uniform(LIGHTEST_G, HEAVIEST_G)))


@dataclass(frozen=True, slots=True)
class ShelfAction:
    t: float  # scenario seconds
    kind: Literal["place", "take", "touch"]
    item: str = ""
    grams: float = 0.0


def stock(shelf: Shelf, scenario: Scenario, zone: str) -> None:
    """Put the items that are on ``zone`` at the scenario's start there, long settled."""
    items = _items(scenario)
    for v in scenario.visits_in(zone):
        if v.start <= 0.0 and v.subject in items:
            shelf.place(v.subject, item_grams(v.subject), -1e9)


def shelf_actions(scenario: Scenario, zone: str) -> list[ShelfAction]:
    """What hands do to ``zone``'s shelf: items leave at the end of their visits and come back
    at the start of later ones; customers who stop at the shelf touch it."""
    actions, items = [], _items(scenario)
    for v in scenario.visits_in(zone):
        if v.subject not in items:
            actions.append(ShelfAction(v.start + RUMMAGE_AFTER_S, "touch"))
            continue
        if v.start > 0.0:
            actions.append(ShelfAction(v.start, "place", v.subject, item_grams(v.subject)))
        if v.end < scenario.duration:
            actions.append(ShelfAction(v.end, "take", v.subject))
    return sorted(actions, key=lambda a: a.t)


async def play(
    shelf: Shelf, actions: Sequence[ShelfAction], clock: Callable[[], float], tick_s: float = 0.02
) -> None:
    """Apply each action when ``clock`` (scenario seconds) reaches it; touches and weights are
    stamped with the event loop's time, the clock the scale simulator measures with."""
    loop = asyncio.get_running_loop()
    for action in actions:
        while clock() < action.t:
            await asyncio.sleep(tick_s)
        now = loop.time()
        if action.kind == "place":
            shelf.place(action.item, action.grams, now)
        elif action.kind == "take":
            shelf.take(action.item, now)
        else:
            shelf.touch(now)


def _items(scenario: Scenario) -> set[str]:
    return {s.raw_id for s in scenario.subjects if s.kind == "item"}
