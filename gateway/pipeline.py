"""The pipeline loop: reads in, durable events out.

Device sessions add reads to the collector and wake this loop. Each run drains everything that
has arrived into one batch, so under load one kernel call covers hundreds of reads while a lone
read at a quiet moment is still processed within milliseconds. With no reads the loop still wakes
at the stage's next deadline, because exits and dwells are made by time passing. All events of a
run are stored in one outbox transaction (one commit per run, not per event).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Final

from gateway.clock import Clock
from gateway.eventfactory import EventFactory
from gateway.events import AnyEvent
from gateway.outbox import Outbox
from gateway.presence import PresenceStage
from gateway.reads import ReadCollector
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
    ) -> None:
        self.collector = ReadCollector()
        self._stage = stage
        self._factory = factory
        self._outbox = outbox
        self._clock = clock
        self._on_stored = on_stored
        self._wake = asyncio.Event()
        self._extra: list[AnyEvent] = []
        self.last_run = clock.now()
        self.reads_total = 0
        self.events_total = 0

    def wake(self) -> None:
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
            self.step(self._clock.now())
            await asyncio.sleep(MIN_RUN_INTERVAL_S)

    def step(self, now: float) -> list[AnyEvent]:
        batch = self.collector.drain()
        transitions = self._stage.feed(batch, now)
        return self._store(transitions, len(batch), now)

    def flush(self, now: float) -> list[AnyEvent]:
        """At shutdown: process what has arrived and store what the stage has due."""
        events = self.step(now)
        return events + self._store(self._stage.flush(now), 0, now)

    def _store(self, transitions: list[Transition], reads: int, now: float) -> list[AnyEvent]:
        # seq follows time within a run too (an exit decided now happened at its last read).
        ordered = sorted(transitions, key=lambda t: t.t)
        events = [self._factory.from_transition(t) for t in ordered]
        events += self._extra
        self._extra = []
        if events:
            self._outbox.append(events)
            self._on_stored()
        self.reads_total += reads
        self.events_total += len(events)
        self.last_run = now
        return events
