"""Ground truth: who is in which zone, and when.

A scenario is what "really happened" in the simulated shop; device simulators derive their
traffic from it and the demo scores the daemon's events against it. Times are seconds from the
scenario's start. A subject is in at most one zone at a time, so a visit list per subject is a
timeline of disjoint intervals.

``Scenario.generate`` draws a plausible shop from a seed:

* customers arrive at random through the first zone (the entrance), wander from zone to zone
  (never the same zone twice in a row) with dwell times of a few to tens of seconds and gaps
  between visits, then leave;
* items sit on a shelf zone from the start; now and then one is picked up (its visit ends) and
  sometimes put back later (a new visit in the same zone begins);
* with ``Behaviour.pick_probability`` above 0, customers pick items up too: a customer who stops
  at a shelf for ``min_pick_dwell_s`` or longer takes, with that probability, an item that is on
  the shelf at a moment of the stop, and puts it back before leaving with
  ``putback_probability`` (when the stop leaves room for it); an item taken away is restocked
  after ``restock_s``. Each pickup and putback is a ``Move`` in ``Scenario.moves``: which
  customer moved which item, where and when.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Final, Literal

import numpy as np
from numpy.typing import NDArray

from firmware_sim.epc import (
    DEFAULT_CUSTOMER_PREFIX,
    FILTER_POS_TRADE_ITEM,
    Sgtin,
    customer_epc,
    em4100_card,
    is_uhf_epc,
)

SubjectKind = Literal["customer", "item"]
JSON_VERSION: Final = 1
# Example company prefix from the GS1 Tag Data Standard; 7 digits, so partition 5.
DEMO_COMPANY_PREFIX: Final = "0614141"
PICKS_SEED: Final = 0x5EED_91C5
PICK_MARGIN_S: Final = 2.0  # a hand is this far from the ends of the stop and of the item's stay
MIN_VISIT_S: Final = 1.0  # a shorter brush past a zone is not ground truth anyone can score
CARD_TURN_S: Final = 1.0  # between one card leaving a card reader's field and the next arriving


@dataclass(frozen=True, slots=True)
class Subject:
    raw_id: str  # uppercase hex EPC, as the contract publishes it
    kind: SubjectKind


@dataclass(frozen=True, slots=True)
class Visit:
    subject: str  # Subject.raw_id
    zone: str
    start: float
    end: float

    def covers(self, t: float) -> bool:
        return self.start <= t < self.end


@dataclass(frozen=True, slots=True)
class ScenarioClock:
    """Seconds into the scenario, on the monotonic clock; the device sims of one run share one.

    Any ``Callable[[], float]`` will do where a clock is taken; tests pass their own.
    """

    origin: float = field(default_factory=time.monotonic)

    def __call__(self) -> float:
        return time.monotonic() - self.origin

    @classmethod
    def starting_at(cls, t: float) -> ScenarioClock:
        """A clock that reads ``t`` now: skip to the interesting part of a scenario."""
        return cls(time.monotonic() - t)


@dataclass(frozen=True, slots=True)
class Behaviour:
    """The knobs of ``Scenario.generate``; all ranges are uniform (low, high) in seconds."""

    dwell_s: tuple[float, float] = (3.0, 40.0)
    gap_s: tuple[float, float] = (2.0, 15.0)
    visits_per_customer: tuple[int, int] = (1, 5)
    pickups_per_item_per_min: float = 0.2
    putback_probability: float = 0.5
    away_s: tuple[float, float] = (3.0, 30.0)  # how long a picked-up item is off the shelf
    pick_probability: float = 0.0  # a customer's stop at a shelf includes a pickup
    min_pick_dwell_s: float = 6.0  # shorter stops pick nothing up
    restock_s: tuple[float, float] = (60.0, 300.0)  # an item taken away is replaced after


@dataclass(frozen=True, slots=True)
class Move:
    """Ground truth of a customer's hand: ``customer`` took ``item`` from, or put it back on,
    the shelf of ``zone`` at ``t``."""

    t: float
    kind: Literal["pickup", "putback"]
    item: str
    customer: str
    zone: str


@dataclass(frozen=True, slots=True)
class VisitColumns:
    """``Scenario.visits`` as arrays, same order: a simulator asks "who is where between t0 and
    t1" many times a second, and a Python pass over a day's visits each time is milliseconds."""

    start: NDArray[np.float64]
    end: NDArray[np.float64]
    subject: NDArray[np.int32]  # index into Scenario.subjects
    zone: NDArray[np.int32]  # index into Scenario.zones, -1 for a zone not listed there
    uhf: NDArray[np.bool_]  # the subject carries a UHF tag (``is_uhf_epc``)

    def overlapping(self, t0: float, t1: float) -> NDArray[np.intp]:
        """Indices of the visits with some time in [t0, t1), in visit order."""
        return np.flatnonzero((self.start < t1) & (self.end > t0))


@dataclass(frozen=True, slots=True)
class Scenario:
    zones: tuple[str, ...]
    subjects: tuple[Subject, ...]
    visits: tuple[Visit, ...]  # sorted by start
    duration: float
    moves: tuple[Move, ...] = ()  # customers' pickups and putbacks, sorted by t
    _columns: list[VisitColumns] = field(
        default_factory=list, init=False, repr=False, compare=False
    )  # built on first use; a list because the dataclass is frozen

    def columns(self) -> VisitColumns:
        if not self._columns:
            index = {s.raw_id: i for i, s in enumerate(self.subjects)}
            zone = {z: i for i, z in enumerate(self.zones)}
            v = self.visits
            self._columns.append(
                VisitColumns(
                    start=np.array([x.start for x in v], np.float64),
                    end=np.array([x.end for x in v], np.float64),
                    subject=np.array([index[x.subject] for x in v], np.int32),
                    zone=np.array([zone.get(x.zone, -1) for x in v], np.int32),
                    uhf=np.array([is_uhf_epc(x.subject) for x in v], np.bool_),
                )
            )
        return self._columns[0]

    @classmethod
    def generate(
        cls,
        *,
        seed: int,
        duration: float,
        zones: Sequence[str],
        customers: int,
        items: int,
        shelves: Sequence[str] | None = None,
        customer_prefix: str = DEFAULT_CUSTOMER_PREFIX,
        behaviour: Behaviour = Behaviour(),
        card_customers: int = 0,
    ) -> Scenario:
        """``shelves`` (default: every zone but the first, the entrance) hold the items.

        ``customers`` carry UHF loyalty cards and wander between zones; ``card_customers`` carry
        125 kHz EM4100 cards, which only a card reader sees: they present them at the entrance,
        one card at a time.
        """
        rng = random.Random(seed)
        duration = float(duration)
        shelf_zones = tuple(shelves) if shelves else (tuple(zones[1:]) or tuple(zones))
        subjects: list[Subject] = []
        visits: list[Visit] = []
        for n in range(customers):
            # The low bits carry n, so card numbers never collide.
            raw_id = customer_epc(customer_prefix, rng.getrandbits(40) << 24 | n)
            subjects.append(Subject(raw_id, "customer"))
            visits += _wander(rng, raw_id, zones, duration, behaviour)
        card_visits: list[Visit] = []
        for n in range(card_customers):
            raw_id = em4100_card(rng.randrange(256), rng.getrandbits(24) << 8 | n)
            subjects.append(Subject(raw_id, "customer"))
            card_visits += _wander(rng, raw_id, zones[:1], duration, behaviour)
        visits += _one_card_at_a_time(card_visits, duration)
        for n in range(items):
            raw_id = _item_epc(rng, n)
            subjects.append(Subject(raw_id, "item"))
            visits += _shelf_life(
                rng, raw_id, shelf_zones[n % len(shelf_zones)], duration, behaviour
            )
        moves: list[Move] = []
        if behaviour.pick_probability > 0:
            # A generator of its own: scenarios without picks stay what they were for a seed.
            items_ = {s.raw_id for s in subjects if s.kind == "item"}
            picks = _Picks(random.Random(seed ^ PICKS_SEED), visits, items_, behaviour)
            visits, moves = picks.play()
        visits.sort(key=lambda v: (v.start, v.subject))
        return cls(tuple(zones), tuple(subjects), tuple(visits), duration, tuple(moves))

    def present_at(self, t: float) -> dict[str, str]:
        """Subject raw id -> the zone it is in at ``t``; absent subjects are not listed."""
        return {v.subject: v.zone for v in self.visits if v.covers(t)}

    def visits_in(self, zone: str) -> list[Visit]:
        return [v for v in self.visits if v.zone == zone]

    def card_visits(self, zone: str, readable: Callable[[str], bool]) -> list[Visit]:
        """What a card reader in ``zone`` sees: customers' visits whose ids ``readable`` says
        its card type can carry (item EPCs are not cards), earliest arrival first."""
        cards = {s.raw_id for s in self.subjects if s.kind == "customer"}
        return sorted(
            (v for v in self.visits_in(zone) if v.subject in cards and readable(v.subject)),
            key=lambda v: v.start,
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": JSON_VERSION,
                "duration": self.duration,
                "zones": list(self.zones),
                "subjects": [asdict(s) for s in self.subjects],
                "visits": [asdict(v) for v in self.visits],
                "moves": [asdict(m) for m in self.moves],
            },
            indent=1,
        )

    @classmethod
    def from_json(cls, text: str) -> Scenario:
        doc = json.loads(text)
        if doc.get("version") != JSON_VERSION:
            raise ValueError(f"unsupported scenario version {doc.get('version')!r}")
        return cls(
            zones=tuple(doc["zones"]),
            subjects=tuple(Subject(s["raw_id"], s["kind"]) for s in doc["subjects"]),
            visits=tuple(
                Visit(v["subject"], v["zone"], float(v["start"]), float(v["end"]))
                for v in doc["visits"]
            ),
            duration=float(doc["duration"]),
            moves=tuple(
                Move(float(m["t"]), m["kind"], m["item"], m["customer"], m["zone"])
                for m in doc.get("moves", [])
            ),
        )


def _wander(
    rng: random.Random, raw_id: str, zones: Sequence[str], duration: float, b: Behaviour
) -> Iterable[Visit]:
    t = rng.uniform(0.0, duration * 0.8)
    zone: str | None = None
    for i in range(rng.randint(*b.visits_per_customer)):
        # Everyone comes in through the first zone, the entrance.
        zone = zones[0] if i == 0 else rng.choice([z for z in zones if z != zone] or list(zones))
        end = min(t + rng.uniform(*b.dwell_s), duration)
        if end - t >= MIN_VISIT_S:
            yield Visit(raw_id, zone, t, end)
        t = end + rng.uniform(*b.gap_s)
        if t >= duration:
            return


def _one_card_at_a_time(visits: list[Visit], duration: float) -> Iterable[Visit]:
    """Card customers queue at the reader: a 125 kHz reader has no anticollision and reads one
    card in its field at a time, so a visit of two cards at once could be neither seen nor
    scored. Each card waits until the one before has left, and ``CARD_TURN_S`` more."""
    free = 0.0
    for v in sorted(visits, key=lambda v: (v.start, v.subject)):
        start = max(v.start, free)
        end = min(start + (v.end - v.start), duration)
        if end - start >= MIN_VISIT_S:
            yield Visit(v.subject, v.zone, start, end)
            free = end + CARD_TURN_S


def _shelf_life(
    rng: random.Random, raw_id: str, shelf: str, duration: float, b: Behaviour
) -> Iterable[Visit]:
    t = 0.0
    rate_per_s = b.pickups_per_item_per_min / 60.0
    while t < duration:
        pickup = t + (rng.expovariate(rate_per_s) if rate_per_s > 0 else duration)
        yield Visit(raw_id, shelf, t, min(pickup, duration))
        if pickup >= duration or rng.random() >= b.putback_probability:
            return
        t = pickup + rng.uniform(*b.away_s)


def _item_epc(rng: random.Random, n: int) -> str:
    # A handful of products, many serials each, as on a real shelf.
    product = rng.randrange(8)
    item_reference = f"1{12340 + product:05d}"  # indicator digit 1, then the product number
    return Sgtin(FILTER_POS_TRADE_ITEM, DEMO_COMPANY_PREFIX, item_reference, 1000 + n).to_hex()


class _Picks:
    """Customers' pickups carved out of the items' stays on their shelves."""

    def __init__(self, rng: random.Random, visits: list[Visit], items: set[str], b: Behaviour):
        self._rng, self._b = rng, b
        self._stays = [v for v in visits if v.subject in items]
        self._rest = [v for v in visits if v.subject not in items]
        self._stops = sorted(
            (
                v for v in self._rest
                if v.zone in {s.zone for s in self._stays} and v.end - v.start >= b.min_pick_dwell_s
            ),
            key=lambda v: (v.start, v.subject),
        )  # fmt: skip

    def play(self) -> tuple[list[Visit], list[Move]]:
        moves: list[Move] = []
        for stop in self._stops:
            if self._rng.random() < self._b.pick_probability:
                moves += self._pick(stop)
        return self._rest + self._stays, sorted(moves, key=lambda m: m.t)

    def _pick(self, stop: Visit) -> list[Move]:
        t = self._rng.uniform(stop.start + PICK_MARGIN_S, stop.end - PICK_MARGIN_S)
        on_shelf = [
            i for i, v in enumerate(self._stays)
            if v.zone == stop.zone and v.start + PICK_MARGIN_S <= t <= v.end - PICK_MARGIN_S
        ]  # fmt: skip
        if not on_shelf:
            return []
        i = self._rng.choice(on_shelf)
        stay = self._stays[i]
        pieces = [Visit(stay.subject, stay.zone, stay.start, t)]
        moves = [Move(t, "pickup", stay.subject, stop.subject, stop.zone)]
        back = t + self._rng.uniform(*self._b.away_s)
        # Put back before walking on, when the stop is long enough for the time away (and
        # before the item's stay ends: another hand may have taken it earlier in time).
        fits = back <= stop.end - 0.5 and stay.end - back >= MIN_VISIT_S
        if self._rng.random() < self._b.putback_probability and fits:
            pieces.append(Visit(stay.subject, stay.zone, back, stay.end))
            moves.append(Move(back, "putback", stay.subject, stop.subject, stop.zone))
        else:  # taken away; the staff put another of the same on the shelf later (no Move)
            restocked = t + self._rng.uniform(*self._b.restock_s)
            if stay.end - restocked >= MIN_VISIT_S:
                pieces.append(Visit(stay.subject, stay.zone, restocked, stay.end))
        self._stays[i : i + 1] = pieces
        return moves
