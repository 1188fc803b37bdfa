"""The pipeline loop: reads in, durable events out.

The loop runs on a tick (``tick_s``, config ``presence.tick_ms``): at most once per tick, on a
fixed time grid. Each run first reads every streaming port that is ticking (``Tick.poll``: all
of them in this one wakeup), then drains everything that has arrived into one batch, so that one
kernel call covers the reads of a whole tick from every reader. Reads from elsewhere (card
readers, a parked port waking) and weight readings ask for a run at the next tick; so a read
waits at most one tick, and a steady stream costs one wakeup per tick whatever its chunking.
With no reads the loop still wakes at the stage's next deadline (on the grid too), because exits
and dwells are made by time passing. A tick whose reads only refresh visits (each of a subject
already present in the read's zone: the steady state of a shop) and whose scale readings are of
still shelves reads the ports and stops there; such reads and readings wait for a run that
something else makes due, for at most ``DEFER_MAX_S`` (``Pipeline.due``). All events of a run
are stored in one outbox transaction (one commit per run, not per event), committed on the
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
from gateway.devices.tick import TICK_S, Tick
from gateway.events.factory import EventFactory
from gateway.events.model import AnyEvent
from gateway.outbox import Outbox
from gateway.reads.batch import ReadBatch, ReadCollector, Subjects
from gateway.stages.fusion import FusionStage, ItemMove
from gateway.stages.presence import PresenceStage
from gateway.stages.shelf import ShelfStage, WeightChange, WeightCollector
from gateway.stages.transitions import Transition
from gateway.telemetry import Histogram

log = logging.getLogger(__name__)

# Reads that only refresh visits wait at most this long for a run (``Pipeline.due``): the
# live page, the metrics and the stages' memory see them within it.
DEFER_MAX_S: Final = 1.0
IDLE_WAKE_S: Final = 1.0  # about how long the loop sleeps when the stage has nothing pending


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
        tick_s: float = TICK_S,
    ) -> None:
        self.collector = ReadCollector()
        self.tick = Tick(tick_s, self.wake)
        self.weights = WeightCollector()
        self._stage = stage
        self._shelf = shelf or ShelfStage([])
        self._fusion = fusion or FusionStage({}, Subjects())
        self._factory = factory
        self._outbox = outbox
        self._clock = clock
        self._on_stored = on_stored
        self._on_events = on_events  # the local rules: they see a run's events before its commit
        self._pending = False  # something arrived for the next run
        self._looked = 0  # rows of the collector that due() has looked at
        self._weighed = 0  # and readings of the weight collector
        self._alarm: _Alarm | None = None  # set while the loop sleeps
        self._extra: list[AnyEvent] = []
        self.last_run = clock.now()
        self.reads_total = 0
        self.weights_total = 0
        self.events_total = 0
        self.events_by_type: dict[str, int] = {}
        self.batches = 0
        self.stage_seconds = Histogram()  # presence, shelf and fusion stages, per run
        # Sees each run's reads while someone watches the live page (gateway/web); else None.
        self.tap: Callable[[ReadBatch], None] | None = None

    def wake(self) -> None:
        """Something arrived: run at the next tick."""
        self._pending = True
        if self._alarm is not None:
            self._alarm.advance_to(self.tick.at_or_after(self.tick.loop.time()))

    def add_weight(self, device: int, grams: float, t: float) -> None:
        """A scale reading (``device`` indexes the config's devices), ``t`` on the clock."""
        self.weights.add(t, device, grams)
        self.wake()

    def add_event(self, event: AnyEvent) -> None:
        """Queue an event that does not come from reads (device status) for the next run."""
        self._extra.append(event)
        self.wake()

    async def run(self) -> None:
        loop = self.tick.loop
        rush = False
        while True:
            self._alarm = _Alarm(loop, loop.time() if rush else self._next_run(loop.time()))
            try:
                await self._alarm.wait()
            finally:
                self._alarm = None
            rush = self.tick.poll()
            self._pending = False  # what the poll brought is in this run, or waits in it
            now = self._clock.now()
            if not self.due(now):
                continue
            events = self._process(now)
            if events:
                # The commit runs on the outbox's writer thread; meanwhile the loop serves the
                # readers and the rules' actions, and reads arriving now form the next batch.
                await self._outbox.store(events)
                self._on_stored()

    def due(self, now: float) -> bool:
        """Must the stages run at this tick? Not when all it brought are reads that only
        refresh visits (``PresenceStage.has_news``) and readings of settled shelves
        (``ShelfStage.has_news``), and nothing else is due: then they wait in their
        collectors, and the tick costs the ports' reads alone. They are fed at the next run
        with their own times, so the stages decide the same as if fed now; the run comes at a
        stage deadline, with anything that can change, or ``DEFER_MAX_S`` after the last."""
        if self._extra or now - self.last_run >= DEFER_MAX_S:
            return True
        deadline = self._stage.next_deadline()
        if deadline is not None and now >= deadline:
            return True
        weighed = len(self.weights)
        if self._weighed < weighed:
            fresh, self._weighed = self.weights.since(self._weighed), weighed
            if self._shelf.has_news(fresh):
                return True
        held = len(self.collector)
        looked, self._looked = self._looked, held
        return looked < held and self._stage.has_news(self.collector.room(0), looked, held)

    def _next_run(self, now: float) -> float:
        """Loop time of the next run: the next tick if anything waits or a port is ticking, else
        the stage's deadline (on the grid too), else a point of the once-a-second grid about
        IDLE_WAKE_S from now (shared with the daemon's other timers: ``Tick.second_s``)."""
        after = now + 1e-6  # never twice on one point of the grid
        if self._pending or self.tick.ticking:
            return self.tick.at_or_after(after)
        deadline = self._stage.next_deadline()
        idle = self.tick.second_at_or_after(now + IDLE_WAKE_S / 2)
        if deadline is None:
            return idle
        return min(idle, self.tick.at_or_after(max(after, now + deadline - self._clock.now())))

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
        self._looked = self._weighed = 0
        if self.tap is not None:
            self.tap(batch)
        samples = self.weights.drain()
        started = time.perf_counter()
        transitions = self._stage.feed(batch, now)
        changes = self._shelf.feed(samples, now) if samples else []
        moves = self._fusion.feed(transitions, changes, now)
        self.stage_seconds.observe(time.perf_counter() - started)
        self.batches += 1
        self.reads_total += len(batch)
        self.weights_total += len(samples)
        self.last_run = now
        if not (transitions or changes or moves or self._extra):
            return []  # the steady state: reads that only refreshed who is where
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
        return events

    def _append(self, events: list[AnyEvent]) -> None:
        if events:
            self._outbox.append(events)
            self._on_stored()


class _Alarm:
    """A sleep until loop time ``when`` that can be brought forward (``advance_to``) by whoever
    has something for the sleeper, without waking it in between."""

    def __init__(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        self._loop = loop
        self._done: asyncio.Future[None] = loop.create_future()
        self._when = when
        self._timer = loop.call_at(when, self._ring)

    def advance_to(self, when: float) -> None:
        if when < self._when and not self._done.done():
            self._timer.cancel()
            self._when = when
            self._timer = self._loop.call_at(when, self._ring)

    async def wait(self) -> None:
        try:
            await self._done
        finally:
            self._timer.cancel()

    def _ring(self) -> None:
        if not self._done.done():
            self._done.set_result(None)
