"""The daemon: every long-running part in task groups, and an orderly stop.

Two task groups nest. The outer one holds the uplink, which must outlive everything else so that
events flushed at shutdown can still be published. The inner one holds the device sessions, the
pipeline and the watchdog; shutdown is an exception raised inside it (hypercorn's
``worker_serve`` does the same), which cancels the readers first. Then the pipeline is flushed
into the outbox, the uplink gets a bounded grace period to drain it, publishes the offline status
and disconnects. What it could not send stays in the outbox for the next start.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Final, assert_never

from drivers.compiled import choice as kernel_choice
from drivers.compiled import describe as describe_kernels
from gateway import __version__
from gateway.clock import Clock, SystemClock, sleep_on_grid
from gateway.commands import CommandRouter
from gateway.commands.clocksync import clock_synchronised
from gateway.commands.ledger import CommandLedger
from gateway.config import Config, Em4100Reader, ModbusScaleSensor, Pn532Reader, ThingMagicReader
from gateway.devices.base import DeviceContext, Session
from gateway.devices.em4100 import Em4100Session
from gateway.devices.modbus_scale import ModbusScaleSession, WeightSink
from gateway.devices.pn532 import Pn532Session
from gateway.devices.thingmagic import ThingMagicSession
from gateway.events.factory import EventFactory
from gateway.events.model import ActionExecuted, AnyEvent
from gateway.events.privacy import Pseudonymizer
from gateway.health import DeviceState
from gateway.outbox import Outbox
from gateway.outputs import Outputs
from gateway.pipeline import IDLE_WAKE_S, Pipeline
from gateway.reads.batch import Subjects
from gateway.rules.runtime import LocalRules
from gateway.runtime.logs import LIFECYCLE
from gateway.runtime.notify import Notifier
from gateway.runtime.supervise import supervised
from gateway.service.metrics import GatewayCollector, MetricsServer, snapshot
from gateway.service.warmup import warm_up_or_stop
from gateway.stages.fusion import FusionStage
from gateway.stages.kernels.jit import prune_stale as prune_stale_kernels
from gateway.stages.presence import PresenceStage, ZoneParams
from gateway.stages.shelf import ScaleSpec, SettleParams, ShelfStage
from gateway.uplink.info import gateway_info
from gateway.uplink.requests import RequestChannel
from gateway.uplink.session import Uplink, topic_base
from gateway.uplink.status import StatusBoard

if TYPE_CHECKING:
    from gateway.web.server import WebServer

# Named, not __name__: the journal shows this name on every line, wherever the module lives.
log = logging.getLogger("gateway.daemon")

READY_TIMEOUT_S: Final = 15.0  # READY=1 even if a device is still in its first attempt by then
STOP_GRACE_S: Final = 5.0  # publishing time granted at shutdown before the rest stays queued


class Shutdown(Exception):
    """Raised inside the daemon's task group to stop it."""


DeviceConfig = ThingMagicReader | Em4100Reader | Pn532Reader | ModbusScaleSensor


def make_session(device: DeviceConfig, *, clock: Clock, on_weight: WeightSink) -> Session:
    """``on_weight`` receives a scale's readings; sessions of readers do not use it."""
    match device:
        case ThingMagicReader():
            return ThingMagicSession(device)
        case Em4100Reader():
            return Em4100Session(device)
        case Pn532Reader():
            return Pn532Session(device)
        case ModbusScaleSensor():
            return ModbusScaleSession(device, on_weight, clock)
        case _:
            assert_never(device)


Reload = Callable[[], tuple[list[str], Callable[[], None] | None]]


class Daemon:
    def __init__(
        self, config: Config, *, clock: Clock | None = None, reload: Reload | None = None
    ) -> None:
        self.config = config
        self._reload = reload
        self.clock = clock or SystemClock()
        self.pseudonymizer = Pseudonymizer.from_file(
            config.privacy.customer_ids, config.privacy.secret_file
        )
        self.outbox = Outbox.from_config(config.storage)
        zones = config.all_zones()
        self.zone_names = [z.id for z in zones]
        self.devices: list[DeviceConfig] = [*config.readers, *config.sensors]
        self.subjects = Subjects()
        self.stage = PresenceStage(
            [ZoneParams(z.id, z.dwell_s) for z in zones],
            subjects=self.subjects,
            forget_after_s=config.presence.forget_after_s,
        )
        # The figures are read when a status is published, once everything below exists.
        self.status = StatusBoard(
            self.outbox.backlog, self.outbox.health, telemetry=functools.partial(snapshot, self)
        )
        self.outputs = Outputs(config.outputs, self._on_output_state)
        for output in config.outputs:
            self.status.set_device(output.id, DeviceState.STARTING.value)
        commands = CommandRouter.on_outbox(
            self.outbox,
            self.outputs,
            trust_unsynchronised_clock=config.commands.trust_unsynchronised_clock,
        )
        self.rules = LocalRules(config, self.outputs, self._action_done, clock=self.clock)
        requests = RequestChannel(
            self,
            CommandLedger(self.outbox),
            topic_base(config),
            synchronised=(
                (lambda: True) if config.commands.trust_unsynchronised_clock else clock_synchronised
            ),
        )
        self.uplink = Uplink(
            config, self.outbox, self.status, commands, self.rules.content, requests
        )
        shelf, fusion = self._shelf_stages()
        self.factory = EventFactory(
            store=config.site.store,
            gateway=config.site.gateway,
            zones=self.zone_names,
            devices=[d.id for d in self.devices],
            subjects=self.subjects,
            pseudonymizer=self.pseudonymizer,
            clock=self.clock,
        )
        self.pipeline = Pipeline(
            stage=self.stage,
            factory=self.factory,
            outbox=self.outbox,
            clock=self.clock,
            on_stored=self.uplink.wake,
            shelf=shelf,
            fusion=fusion,
            on_events=self._on_events,
            tick_s=config.presence.tick_ms / 1000,
        )
        self.contexts = [self._context(i, d) for i, d in enumerate(self.devices)]
        self.sessions = [
            make_session(
                d, clock=self.clock, on_weight=functools.partial(self.pipeline.add_weight, i)
            )
            for i, d in enumerate(self.devices)
        ]
        self.metrics = (
            MetricsServer(GatewayCollector(self), config.metrics.host, config.metrics.port)
            if config.metrics.enabled
            else None
        )
        self.web: WebServer | None = None
        if config.web.enabled:
            from gateway.web.server import WebServer  # noqa: PLC0415  (aiohttp: only when on)

            self.web = WebServer(self, config.web, self.status.set_alert)
        self._first_attempts = {d.id: asyncio.Event() for d in self.devices}

    def _shelf_stages(self) -> tuple[ShelfStage, FusionStage]:
        """The scales' settling and their zones' fusion; the widest window where several
        scales share a zone."""
        zone_of = {name: i for i, name in enumerate(self.zone_names)}
        specs: list[ScaleSpec] = []
        windows: dict[int, float] = {}
        for index, scale in enumerate(self.devices):
            if isinstance(scale, ModbusScaleSensor):
                zone = zone_of[scale.zone]
                params = SettleParams(scale.settle_s, scale.stable_g, scale.min_delta_g)
                specs.append(ScaleSpec(index, zone, params))
                windows[zone] = max(windows.get(zone, 0.0), scale.match_window_s)
        return ShelfStage(specs), FusionStage(windows, self.subjects)

    def _context(self, index: int, device: DeviceConfig) -> DeviceContext:
        zone_of = {name: i for i, name in enumerate(self.zone_names)}
        zones = {antenna: zone_of[zone] for antenna, zone in _zones(device).items()}
        self.status.set_device(device.id, DeviceState.STARTING.value)
        return DeviceContext(
            name=device.id,
            index=index,
            zones=zones,
            customer_prefixes=tuple(self.config.tags.customer_prefixes),
            subjects=self.subjects,
            collector=self.pipeline.collector,
            clock=self.clock,
            wake=self.pipeline.wake,
            on_state=self._on_device_state,
            tick=self.pipeline.tick,
        )

    def _on_device_state(self, device: str, state: DeviceState, detail: str | None) -> None:
        self.status.set_device(device, state.value, detail)
        self.pipeline.add_event(self.factory.device_status(device, state.value, detail))
        self._first_attempts[device].set()

    def _on_output_state(self, output: str, state: DeviceState, detail: str | None) -> None:
        # Outputs do not hold up READY: a display that is down must not keep readers waiting.
        self.status.set_device(output, state.value, detail)
        self.pipeline.add_event(self.factory.device_status(output, state.value, detail))

    def _on_events(self, events: Sequence[AnyEvent], now: float) -> None:
        self.rules.feed(events, now)
        if self.web is not None:
            self.web.view.on_events(events)

    # -- what gateway requests (gateway.uplink.requests) read and do

    def info(self) -> dict[str, object]:
        return gateway_info(self.config, kernel_choice().mode.value)

    def health(self) -> dict[str, object]:
        body: dict[str, object] = json.loads(self.status.payload("online"))
        return body

    def reload(self) -> tuple[list[str], Callable[[], None] | None]:
        if self._reload is None:
            return ["this daemon was started without a config file to reload"], None
        return self._reload()

    def _action_done(self, event: ActionExecuted) -> None:
        self.pipeline.add_event(event)

    async def serve(self, shutdown: Callable[[], Awaitable[object]], notifier: Notifier) -> None:
        log.info("silentgate %s starting: %s", __version__, self.config.counts(), extra=LIFECYCLE)
        log.info("kernels: %s", describe_kernels(), extra=LIFECYCLE)
        self.status.kernels = kernel_choice().mode.value
        prune_stale_kernels()  # an upgrade leaves the previous version's compiled kernels behind
        # No compile when the first reads arrive; a stop meanwhile is answered at once.
        if not await warm_up_or_stop(shutdown, notifier):
            self.outbox.close()
            log.info("stopped while starting", extra=LIFECYCLE)
            return
        try:
            async with asyncio.TaskGroup() as outer:
                outer.create_task(self.uplink.run())
                try:
                    async with asyncio.TaskGroup() as inner:
                        self._start_devices(inner)
                        inner.create_task(self.pipeline.run())
                        inner.create_task(self.outbox.watch())  # storage retried while not ok
                        inner.create_task(self.outputs.run())
                        inner.create_task(self.rules.run())
                        if self.metrics is not None:
                            # A port already taken must not stop the gateway: retried, logged.
                            inner.create_task(supervised("metrics", self.metrics.run))
                        if self.web is not None:
                            # The page never stops the gateway: its failures are retried, logged
                            # and shown as a status alert.
                            inner.create_task(
                                supervised("live page", self.web.run, on_failure=self.web.failed)
                            )
                        inner.create_task(self._ready_and_watchdog(notifier))
                        inner.create_task(_raise_when(shutdown))
                except* Shutdown:
                    log.info("stopping: flushing the pipeline", extra=LIFECYCLE)
                    notifier.stopping()
                self.pipeline.flush(self.clock.now())
                if not await self.uplink.drain(STOP_GRACE_S):
                    backlog = self.outbox.backlog().count
                    log.warning(
                        "%d events stay queued in the outbox for the next start",
                        backlog,
                        extra=LIFECYCLE,
                    )
                self.uplink.stop()
        finally:
            self.outbox.close()
        log.info("stopped", extra=LIFECYCLE)

    def _start_devices(self, tg: asyncio.TaskGroup) -> None:
        for session, ctx in zip(self.sessions, self.contexts, strict=True):
            tg.create_task(self._supervise(session, ctx))

    async def _supervise(self, session: Session, ctx: DeviceContext) -> None:
        def failed(exc: BaseException) -> None:
            ctx.set_state(DeviceState.DOWN, str(exc) or type(exc).__name__)

        await supervised(f"device {ctx.name}", lambda: session.run(ctx), on_failure=failed)

    async def _ready_and_watchdog(self, notifier: Notifier) -> None:
        try:
            async with asyncio.timeout(READY_TIMEOUT_S):
                for event in self._first_attempts.values():
                    await event.wait()
        except TimeoutError:
            log.warning("some devices are still starting; reporting ready anyway", extra=LIFECYCLE)
        states = ", ".join(f"{c.name}={c.state.value}" for c in self.contexts)
        log.info("ready: %s", states, extra=LIFECYCLE)
        notifier.ready(f"{states}; kernels {kernel_choice().mode}")
        interval = notifier.watchdog_interval_s
        while True:
            await sleep_on_grid(interval or 5.0, self.pipeline.tick.second_s)
            # The pipeline runs at least every IDLE_WAKE_S; if it has not, the loop is stuck
            # (or starved) and systemd should restart us: so no ping.
            if interval and self.clock.now() - self.pipeline.last_run < 3 * IDLE_WAKE_S + interval:
                notifier.watchdog()


def _zones(device: DeviceConfig) -> dict[int, str]:
    if isinstance(device, ModbusScaleSensor):
        return {0: device.zone}
    return device.zones()


async def _raise_when(trigger: Callable[[], Awaitable[object]]) -> None:
    await trigger()
    raise Shutdown
