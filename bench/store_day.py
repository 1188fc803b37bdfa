"""A day of a store, offline and faster than real time: the events its gateway would publish.

A seeded shop (``firmware_sim.scenario``) whose customers pick items up, the reads its one UHF
reader would see (``firmware_sim.traffic``), the readings of a scale under each shelf
(``firmware_sim.shelf``), and the daemon's own stages (presence, shelf, fusion, the event
factory with its attribution and pseudonyms) run on a tick, as the pipeline runs them. The
result is the list of contract events with their ``seq``, as a central consumer stores them,
and the scenario they came from (the ground truth).

Run: ``.venv/bin/python -m bench.store_day [--hours 2] [--seed 1]`` prints the counts.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from central.funnel import Visit
from firmware_sim.scenario import Behaviour, Scenario
from firmware_sim.shelf import Shelf, shelf_actions, stock
from firmware_sim.traffic import Antenna, TrafficModel, generate_reads
from gateway.clock import ManualClock
from gateway.events.factory import EventFactory
from gateway.events.privacy import Pseudonymizer
from gateway.reads.batch import ReadBatch, SubjectKind, Subjects
from gateway.stages.fusion import FusionStage
from gateway.stages.presence import PresenceStage, ZoneParams
from gateway.stages.shelf import ScaleSpec, SettleParams, ShelfStage, WeightSample
from gateway.stages.transitions import Transition

STORE: Final = "store-042"
GATEWAY: Final = "gw-1"
ZONES: Final = ("entrance", "shelf-a", "shelf-b")
DWELL_S: Final = {"entrance": 3.0, "shelf-a": 5.0, "shelf-b": 5.0}
SHELVES: Final = ("shelf-a", "shelf-b")
SECRET: Final = b"store-day-secret-of-16-bytes"
TICK_S: Final = 0.25  # coarser than the daemon (0.05 s): only latency depends on it
POLL_S: Final = 0.1  # the scales' 10 Hz
MATCH_WINDOW_S: Final = 5.0
WALL_ORIGIN: Final = 1_795_078_800.0  # 2026-11-19 09:00 UTC: the store opens


@dataclass(frozen=True)
class Day:
    scenario: Scenario
    events: list[dict[str, Any]]
    transitions: list[tuple[Transition, float]]  # as emitted, for scoring the presence stage
    pseudonymizer: Pseudonymizer
    wall_origin: float

    def pseudonym(self, raw_id: str) -> str:
        found = self.pseudonymizer.customer_id(raw_id)
        assert found is not None
        return found


def shop(seed: int, hours: float, customers_per_hour: int = 60, items: int = 24) -> Scenario:
    return Scenario.generate(
        seed=seed, duration=hours * 3600.0, zones=ZONES, items=items,
        customers=round(customers_per_hour * hours),
        behaviour=Behaviour(pickups_per_item_per_min=0.0, pick_probability=0.5),
    )  # fmt: skip


def simulate(scenario: Scenario, seed: int = 1, miss_rate: float = 0.2) -> Day:
    subjects = Subjects()
    for s in scenario.subjects:  # interned in order: a scenario index is a stage index
        subjects.intern(
            s.raw_id, SubjectKind.CUSTOMER if s.kind == "customer" else SubjectKind.ITEM
        )
    clock = ManualClock(start=0.0, wall_offset=WALL_ORIGIN)
    pseudonymizer = Pseudonymizer("hmac-sha256", SECRET)
    devices = ["door", *[f"scale-{z}" for z in SHELVES]]
    factory = EventFactory(
        store=STORE, gateway=GATEWAY, zones=ZONES, devices=devices, subjects=subjects,
        pseudonymizer=pseudonymizer, clock=clock,
    )  # fmt: skip
    shelf_zone = {n + 1: ZONES.index(z) for n, z in enumerate(SHELVES)}
    presence = PresenceStage(
        [ZoneParams(z, DWELL_S[z]) for z in ZONES], subjects=subjects, forget_after_s=float("inf")
    )
    scales = ShelfStage([ScaleSpec(d, z, SettleParams()) for d, z in shelf_zone.items()])
    fusion = FusionStage(dict.fromkeys(shelf_zone.values(), MATCH_WINDOW_S), subjects)
    batch = _reads(scenario, seed, miss_rate)
    weights = _weights(scenario, seed)
    events: list[dict[str, Any]] = []
    seen: list[tuple[Transition, float]] = []
    cuts = np.searchsorted(batch.t, np.arange(TICK_S, scenario.duration + TICK_S, TICK_S))
    w_cuts = np.searchsorted(
        [s.t for s in weights], np.arange(TICK_S, scenario.duration + TICK_S, TICK_S)
    )
    lo = w_lo = 0
    for i, (hi, w_hi) in enumerate(zip(cuts.tolist(), w_cuts.tolist(), strict=True)):
        now = (i + 1) * TICK_S
        clock.t = now
        transitions = presence.feed(_part(batch, lo, hi), now)
        changes = scales.feed(weights[w_lo:w_hi], now)
        moves = fusion.feed(transitions, changes, now)
        seen += [(t, now) for t in transitions]
        timed = [(t.t, factory.from_transition(t)) for t in transitions]
        timed += [(c.t, factory.shelf_weight(c)) for c in changes]
        timed += [(m.t, factory.item_moved(m)) for m in moves]
        timed.sort(key=lambda pair: pair[0])
        for _, event in timed:
            doc = json.loads(event.to_json())
            doc["seq"] = len(events) + 1
            events.append(doc)
        lo, w_lo = hi, w_hi
    return Day(scenario, events, seen, pseudonymizer, WALL_ORIGIN)


def _reads(scenario: Scenario, seed: int, miss_rate: float) -> ReadBatch:
    antennas = [Antenna("door", i + 1, z) for i, z in enumerate(ZONES)]
    neighbours = {z: tuple(ZONES[j] for j in (i - 1, i + 1) if 0 <= j < len(ZONES))
                  for i, z in enumerate(ZONES)}  # fmt: skip
    model = TrafficModel(read_rate_hz=8.0, miss_rate=miss_rate, neighbours=neighbours)
    reads = generate_reads(
        scenario, antennas, model, 0.0, scenario.duration, np.random.default_rng(seed)
    )
    return ReadBatch(
        t=reads.t, subject=reads.subject, zone=reads.antenna.astype(np.int32), rssi=reads.rssi,
        device=np.zeros(len(reads), np.int32), antenna=(reads.antenna + 1).astype(np.int16),
    )  # fmt: skip


def _weights(scenario: Scenario, seed: int) -> list[WeightSample]:
    samples = []
    for n, zone in enumerate(SHELVES):
        shelf = Shelf(seed=seed * 1000 + n)
        stock(shelf, scenario, zone)
        actions = shelf_actions(scenario, zone)
        a = 0
        for t in np.arange(0.0, scenario.duration, POLL_S).tolist():
            while a < len(actions) and actions[a].t <= t:
                act = actions[a]
                if act.kind == "place":
                    shelf.place(act.item, act.grams, act.t)
                elif act.kind == "take":
                    shelf.take(act.item, act.t)
                else:
                    shelf.touch(act.t)
                a += 1
            samples.append(WeightSample(t, n + 1, shelf.measure(t)))
    return sorted(samples, key=lambda s: s.t)


def _part(batch: ReadBatch, lo: int, hi: int) -> ReadBatch:
    return ReadBatch(
        t=batch.t[lo:hi], subject=batch.subject[lo:hi], zone=batch.zone[lo:hi],
        rssi=batch.rssi[lo:hi], device=batch.device[lo:hi], antenna=batch.antenna[lo:hi],
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    started = time.perf_counter()
    day = simulate(shop(args.seed, args.hours), args.seed)
    kinds: dict[str, int] = {}
    for e in day.events:
        kinds[e["type"]] = kinds.get(e["type"], 0) + 1
    print(f"{len(day.events)} events in {time.perf_counter() - started:.1f} s: {kinds}")
    print(f"{len(day.scenario.moves)} true pickups and putbacks")


if __name__ == "__main__":
    main()


def true_visits(day: Day) -> list[Visit]:
    """The funnel's visits as they really were: every customer's stay, dwelled when it lasted
    the zone's dwell_s, picked when that customer took an item there during it."""
    kinds = {s.raw_id: s.kind for s in day.scenario.subjects}
    pickups = [m for m in day.scenario.moves if m.kind == "pickup"]
    visits = []
    for v in day.scenario.visits:
        if kinds[v.subject] != "customer":
            continue
        picked = any(
            m.customer == v.subject and m.zone == v.zone and v.start <= m.t <= v.end
            for m in pickups
        )
        visits.append(
            Visit(
                STORE, v.zone, day.pseudonym(v.subject), day.wall_origin + v.start,
                day.wall_origin + v.end, dwelled=v.end - v.start >= DWELL_S[v.zone],
                picked=picked,
            )
        )  # fmt: skip
    return visits
