"""The pipeline loop: reads in, durable events out.

Device sessions add reads to the collector and wake this loop. Each run drains everything that
has arrived into one batch, so under load one kernel call covers hundreds of reads while a lone
read at a quiet moment is still processed within milliseconds. With no reads the loop still wakes
at the stage's next deadline, because exits and dwells are made by time passing. All events of a
run are stored in one outbox transaction (one commit per run, not per event), committed on the
outbox's writer thread while the loop goes on.

Shelf scales take the same path beside the reads: sessions add weight readings
(``add_weight``), each run drains them into the shelf stage, whose settled changes and the
presence stage's transitions go together through fusion (docs/shelves.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Final

from gateway.clock import Clock
from gateway.eventfactory import EventFactory
from gateway.events import AnyEvent
from gateway.fusion import FusionStage, ItemMove
from gateway.outbox import Outbox
from gateway.presence import PresenceStage
from gateway.reads import ReadCollector, Subjects
from gateway.shelf import ShelfStage, WeightChange, WeightCollector
from gateway.telemetry import Histogram
from gateway.transitions import Transition

log = logging.getLogger(__name__)

IDLE_WAKE_S: Final = 1.0  # how long the loop sleeps when the stage has nothing pending
MIN_RUN_INTERVAL_S: Final = 0.002  # lets reads from several ports coalesce into one batch


class Pipeline:
    def __init__(
        self,
        *,
        stage: PresenceStage,
        factory: EventFactory,
        outbox: Outbox,
        clock: Clock,
        on_stored: Callable[[], None],
        shelf: ShelfStage | None = None,
        fusion: FusionStage | None = None,
        on_events: Callable[[Sequence[AnyEvent], float], None] | None = None,
    ) -> None:
        self.collector = ReadCollector()
        self.weights = WeightCollector()
        self._stage = stage
        self._shelf = shelf or ShelfStage([])
        self._fusion = fusion or FusionStage({}, Subjects())
        self._factory = factory
        self._outbox = outbox
        self._clock = clock
        self._on_stored = on_stored
        self._on_events = on_events  # the local rules: they see every event as it is stored
        self._wake = asyncio.Event()
        self._extra: list[AnyEvent] = []
        self.last_run = clock.now()
        self.reads_total = 0
        self.weights_total = 0
        self.events_total = 0
        self.events_by_type: dict[str, int] = {}
        self.batches = 0
        self.stage_seconds = Histogram()  # presence, shelf and fusion stages, per run

    def wake(self) -> None:
        self._wake.set()

    def add_weight(self, device: int, grams: float, t: float) -> None:
        """A scale reading (``device`` indexes the config's devices), ``t`` on the clock."""
        self.weights.add(t, device, grams)
        self._wake.set()

    def add_event(self, event: AnyEvent) -> None:
        """Queue an event that does not come from reads (device status) for the next run."""
        self._extra.append(event)
        self._wake.set()

    async def run(self) -> None:
        while True:
            now = self._clock.now()
            deadline = self._stage.next_deadline()
            timeout = IDLE_WAKE_S if deadline is None else min(IDLE_WAKE_S, deadline - now)
            if timeout > 0:
                try:
                    async with asyncio.timeout(timeout):
                        await self._wake.wait()
                except TimeoutError:
                    pass
            self._wake.clear()
            events = self._process(self._clock.now())
            if events:
                # The commit runs on the outbox's writer thread; meanwhile the loop serves the
                # readers and the rules' actions, and reads arriving now form the next batch.
                await self._outbox.store(events)
                self._on_stored()
            await asyncio.sleep(MIN_RUN_INTERVAL_S)

    def step(self, now: float) -> list[AnyEvent]:
        """One run, stored before it returns."""
        events = self._process(now)
        self._append(events)
        return events

    def flush(self, now: float) -> list[AnyEvent]:
        """At shutdown: process what has arrived and store what the stage has due."""
        events = self._process(now)
        transitions = self._stage.flush(now)
        moves = self._fusion.feed(transitions, [], now)
        events += self._events(transitions, [], moves, now)
        self._append(events)
        return events

    def _process(self, now: float) -> list[AnyEvent]:
        batch = self.collector.drain()
        samples = self.weights.drain()
        started = time.perf_counter()
        transitions = self._stage.feed(batch, now)
        changes = self._shelf.feed(samples, now)
        moves = self._fusion.feed(transitions, changes, now)
        self.stage_seconds.observe(time.perf_counter() - started)
        self.batches += 1
        self.reads_total += len(batch)
        self.weights_total += len(samples)
        return self._events(transitions, changes, moves, now)

    def _events(
        self,
        transitions: list[Transition],
        changes: list[WeightChange],
        moves: list[ItemMove],
        now: float,
    ) -> list[AnyEvent]:
        # seq follows time within a run too (an exit decided now happened at its last read).
        # The sort is stable: a shelf.weight comes before the pickup made of it.
        timed: list[tuple[float, AnyEvent]] = [
            (t.t, self._factory.from_transition(t)) for t in transitions
        ]
        timed += [(c.t, self._factory.shelf_weight(c)) for c in changes]
        timed += [(m.t, self._factory.item_moved(m)) for m in moves]
        timed.sort(key=lambda pair: pair[0])
        events = [event for _, event in timed] + self._extra
        self._extra = []
        if events and self._on_events is not None:
            # The local rules go first: they only queue actions, and a shelf display should not
            # wait for the outbox's commit. The actions' own events are stored in a later run.
            self._on_events(events, now)
        self.events_total += len(events)
        for event in events:
            self.events_by_type[event.type] = self.events_by_type.get(event.type, 0) + 1
        self.last_run = now
        return events

    def _append(self, events: list[AnyEvent]) -> None:
        if events:
            self._outbox.append(events)
            self._on_stored()
