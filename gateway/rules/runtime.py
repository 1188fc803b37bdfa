"""The rules as the daemon runs them: engine, content cache and dispatcher put together.

The daemon builds one ``LocalRules`` after its outputs, feeds it every batch of events the
pipeline stores (``feed``, which only decides and hands over: it never waits on an output),
runs ``run`` in its task group, and gives ``content`` to the uplink, which subscribes to
``P/content/#`` for it. The ``action.executed`` events come back through ``emit`` (the
pipeline's ``add_event``) and are stored with the next batch, so with the broker down they
wait in the outbox like every other event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from datetime import tzinfo
from pathlib import Path
from typing import Protocol

from gateway.clock import Clock
from gateway.commands.executor import OutputExecutor
from gateway.config.outputs import OutputConfig
from gateway.config.rules import RuleConfig
from gateway.config.sections import SiteConfig, StorageConfig
from gateway.events.model import ActionExecuted, AnyEvent
from gateway.rules.content import ContentStore
from gateway.rules.dispatcher import Dispatcher, Identity
from gateway.rules.engine import RuleEngine


def content_path(storage: StorageConfig) -> Path:
    """Beside the outbox: ``outbox.db`` -> ``outbox.content.json``."""
    return storage.path.with_suffix(".content.json")


class RulesConfig(Protocol):
    """What the rules read of ``gateway.config.Config``."""

    @property
    def site(self) -> SiteConfig: ...

    @property
    def storage(self) -> StorageConfig: ...

    @property
    def outputs(self) -> Sequence[OutputConfig]: ...

    @property
    def rules(self) -> Sequence[RuleConfig]: ...


class LocalRules:
    def __init__(
        self,
        config: RulesConfig,
        executors: Mapping[str, OutputExecutor],
        emit: Callable[[ActionExecuted], None],
        *,
        clock: Clock,
        tz: tzinfo | None = None,
    ) -> None:
        self.content = ContentStore.open(content_path(config.storage))
        self.engine = RuleEngine(config.rules, self.content, tz=tz)
        identity = Identity(config.site.store, config.site.gateway)
        self.dispatcher = Dispatcher(
            executors, config.outputs, emit, identity=identity, clock=clock
        )

    def feed(self, events: Sequence[AnyEvent], now: float) -> None:
        """Called by the pipeline after ``events`` are stored."""
        planned = self.engine.feed(events, now)
        if planned:
            self.dispatcher.submit(planned)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.dispatcher.run())
            tg.create_task(self.content.run())
