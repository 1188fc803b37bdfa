"""The MQTT uplink: publishes the outbox in seq order, QoS 1, and deletes rows on PUBACK.

One connection at a time, in a reconnect loop with capped jittered backoff (aiomqtt's
``docs/reconnection.md`` pattern). While connected, up to ``mqtt.inflight`` publishes are
unacknowledged at once; MQTT keeps QoS 1 messages of one connection in order, so consumers see
``seq`` ascending. A row is deleted only after its PUBACK (with the pipeline's next store of
events, or within about a second: ``Outbox.delivered_later``); after a reconnect everything not yet
acknowledged is sent again, so delivery is at least once and a consumer drops repeats by ``id``.

The gateway speaks MQTT v5 and falls back to 3.1.1 when the broker refuses the protocol
version (an older mosquitto, or a small embedded broker). On v5 every message has the content
type ``application/json``; a batch also carries the user properties ``seq`` (``first-last``) and
``count``, so a consumer sees what a batch holds, and gaps, before parsing it. Events never
expire; command results do (``RESULT_EXPIRY_S``).

With a ``CommandRouter``, the uplink also subscribes to ``P/cmd/+`` and hands what arrives to a
``CommandChannel`` (``gateway/commands/channel.py``), which publishes the results; with a
``ContentStore`` it subscribes to ``P/content/#``. What arrives passes one bounded queue
(``gateway/uplink/inbound.py``: a lane per kind, a stated policy when one is full) to one consumer,
which contains a failure to handle a message to that message. On v5 the CONNECT tells the broker
``MAX_PACKET_BYTES``, so larger messages are dropped by the broker and never reach the gateway.

Whenever a connection ends for any reason but its loss (a stop, a cancellation because another
part of the daemon failed, an error in the uplink itself), the retained ``P/status`` is set
offline by an explicit publish before the DISCONNECT: a normal DISCONNECT discards the last
will, so without it the status would say online after the daemon had gone.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from typing import Final, cast

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway.clock import on_grid, second_grid, sleep_on_grid
from gateway.commands.channel import REFUSALS_MAX, RESULTS_MAX, CommandChannel
from gateway.commands.router import CommandRouter
from gateway.config import Config
from gateway.outbox import Outbox, Row
from gateway.rules.content import ContentStore, ContentSubscription
from gateway.runtime.logs import LIFECYCLE
from gateway.runtime.supervise import Backoff
from gateway.telemetry import Histogram
from gateway.uplink import brokerclient
from gateway.uplink.inbound import Acks, Inbound
from gateway.uplink.requests import RequestChannel
from gateway.uplink.status import REFRESH_S, StatusBoard
from gateway.wire.topics import PUBLISH_TIMEOUT_S, event_topic

# Named, not __name__: the journal shows this name on every line, wherever the module lives.
log = logging.getLogger("gateway.uplink")

ACK_FLUSH_ROWS: Final = 256  # delete acknowledged rows in one transaction per this many
PAGE_ROWS_MAX: Final = 10_000
_REFUSED_CREDENTIALS_CODES: Final = (4, 5, 0x86, 0x87)  # v3 rc 4/5, v5 0x86/0x87
# The largest packet the broker may send us (v5 CONNECT property): a command (4 KiB) or a
# content message (2 KiB) with its topic and properties fits many times over.
MAX_PACKET_BYTES: Final = 16 * 1024
# Unacknowledged messages the broker may send at once (v5 CONNECT property): acknowledged only
# once handled, so this is how far a flood gets ahead of the gateway (gateway/uplink/inbound.py).
RECEIVE_MAXIMUM: Final = 64
OFFLINE_TIMEOUT_S: Final = 2.0  # for the offline status when the daemon goes away
REASONS_REMEMBERED: Final = 64  # distinct connection errors already logged at WARNING


class _Stop(Exception):
    """Raised inside the connection's task group when the daemon asks the uplink to stop."""


def topic_base(config: Config) -> str:
    return f"{config.mqtt.topic_prefix}/{config.site.store}/{config.site.gateway}"


class Uplink:
    def __init__(
        self,
        config: Config,
        outbox: Outbox,
        status: StatusBoard,
        commands: CommandRouter | None = None,
        content: ContentStore | None = None,
        requests: RequestChannel | None = None,
    ) -> None:
        self._config = config
        self._outbox = outbox
        self._status = status
        self._grid_s = second_grid(config.presence.tick_ms / 1000)  # of the timers below
        self.base = topic_base(config)
        self._commands = (
            None if commands is None else CommandChannel(commands, self.base, self._on_result)
        )
        self._content = None if content is None else ContentSubscription(content, self.base)
        self._requests = requests
        self.inbound = Inbound(self._commands, self._content, status.touch, requests)
        self._reasons: set[str] = set()  # connection errors logged at WARNING once
        status.inbound = self.inbound.figures
        self._protocol = brokerclient.protocol_version(config.mqtt)
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._backoff = Backoff(initial=0.5, cap=30.0)
        self._single_props: tuple[aiomqtt.ProtocolVersion, Properties | None] | None = None
        self._proven = False  # connected once with self._protocol: keep it on flaky links
        self.connected = asyncio.Event()
        self.published = 0
        self.publish_seconds = Histogram()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Connect, publish, reconnect; returns only after ``stop()``. Commands run beside the
        connections and are cancelled with the uplink."""
        async with asyncio.TaskGroup() as tg:
            beside = [tg.create_task(self._commands.run())] if self._commands else []
            if self._requests is not None:
                beside.append(tg.create_task(self._requests.run()))
            await self._connections()
            for task in beside:
                task.cancel()

    async def _connections(self) -> None:
        while not self._stop.is_set():
            try:
                await self._session()
            except* aiomqtt.MqttError as group:
                # A lost connection surfaces inside the session's task group, so it comes
                # wrapped in an ExceptionGroup (one MqttError per publish that was in flight).
                self._on_connection_error(_first_mqtt_error(group))
            finally:
                self.connected.clear()
                await self._flush_acks()
            if not self._stop.is_set():
                delay = self._backoff.next()
                log.warning("broker %s unreachable; retrying in %.1f s", self._where(), delay)
                try:
                    async with asyncio.timeout(delay):
                        await self._stop.wait()
                except TimeoutError:
                    pass

    async def drain(self, timeout: float) -> bool:
        """Wait until the outbox is empty (True) or ``timeout`` passes (False)."""
        try:
            async with asyncio.timeout(timeout):
                while self._outbox.backlog().count > 0:
                    self.wake()
                    await asyncio.sleep(0.05)
        except TimeoutError:
            return False
        return True

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def _on_connection_error(self, exc: aiomqtt.MqttError) -> None:
        rc = getattr(exc, "rc", None)
        code = getattr(rc, "value", rc)
        v5 = self._protocol == aiomqtt.ProtocolVersion.V5
        if code in _REFUSED_CREDENTIALS_CODES:
            log.error(
                "broker %s refused the credentials (%s): check mqtt.username, "
                "mqtt.password_file and the client certificate",
                self._where(),
                exc,
            )
        elif self._config.mqtt.protocol != "auto":
            self._log_reason(exc)
        elif code in brokerclient.BAD_PROTOCOL_CODES and v5:
            log.info("broker %s refused MQTT v5; falling back to 3.1.1", self._where())
            self._protocol = aiomqtt.ProtocolVersion.V311
        elif rc is None and "timed out" in str(exc) and not self._proven:
            # Some small brokers accept the TCP connection but never answer a v5 CONNECT
            # (amqtt does this when a will is set); try the other version next time.
            self._protocol = aiomqtt.ProtocolVersion.V311 if v5 else aiomqtt.ProtocolVersion.V5
            log.info("no CONNACK from %s; trying MQTT %s", self._where(), self._protocol_name())
        else:
            self._log_reason(exc)

    def _log_reason(self, exc: aiomqtt.MqttError) -> None:
        """Why a connection failed or ended: at WARNING the first time a reason is seen (a
        certificate the broker refuses, a TLS version mismatch), then only at DEBUG, since the
        same reason repeats at every retry."""
        reason = str(exc) or type(exc).__name__
        if reason in self._reasons:
            log.debug("connection to %s failed: %s", self._where(), reason)
            return
        if len(self._reasons) >= REASONS_REMEMBERED:
            self._reasons.clear()
        self._reasons.add(reason)
        log.warning("connection to %s failed: %s", self._where(), reason)

    async def _session(self) -> None:
        async with self._client() as client:
            self.connected.set()
            self._backoff.reset()
            self._proven = True
            # aiomqtt warns on every publish beyond 10 awaiting their PUBACK; the window is ours.
            client.pending_calls_threshold = (
                4 * self._config.mqtt.inflight + RESULTS_MAX + REFUSALS_MAX
            )
            log.info(
                "connected to %s (MQTT %s)", self._where(), self._protocol_name(), extra=LIFECYCLE
            )
            self.inbound.bind(_manual_acks(client))
            try:
                await self._serve(client)
            except BaseException as exc:
                if not _connection_lost(exc):
                    await self._say_offline(client, exc)
                raise
            finally:
                self.inbound.bind(None)
            await self._say_offline(client, None)

    async def _serve(self, client: aiomqtt.Client) -> None:
        """Everything a connection does, until it is lost (raises) or stop() (returns)."""
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._pump(client))
                tg.create_task(self._stop_on_request())
                # Always running: aiomqtt's publish does not notice a dropped connection
                # (it waits for its timeout); the message iterator does, and raises.
                tg.create_task(self.inbound.consume(client))
                if self._content is not None:
                    await client.subscribe(self._content.topic_filter, qos=1)
                if self._commands is not None:
                    await client.subscribe(self._commands.topic_filter, qos=1)
                    window = self._config.mqtt.inflight
                    results = self._commands.publish_results(client, window, self._json_properties)
                    tg.create_task(results)
                if self._requests is not None:
                    await client.subscribe(self._requests.topic_filter, qos=1)
                    tg.create_task(self._requests.publish_responses(client))
                    await self._publish_info(client, self._requests)
                # Online once subscribed: a central server that sees it can send commands.
                await self._publish_status(client, "online")
                tg.create_task(self._status_loop(client))
        except* _Stop:
            await self._flush_acks()

    async def _say_offline(self, client: aiomqtt.Client, why: BaseException | None) -> None:
        """The retained offline status, within OFFLINE_TIMEOUT_S; best effort."""
        if why is not None:
            log.error(
                "uplink ending (%s); publishing the offline status", _describe(why), extra=LIFECYCLE
            )
        try:
            async with asyncio.timeout(OFFLINE_TIMEOUT_S):
                await self._publish_status(client, "offline")
        except (aiomqtt.MqttError, TimeoutError) as exc:
            log.warning("could not publish the offline status: %s", exc or "timed out")
        log.info("disconnecting from %s", self._where(), extra=LIFECYCLE)

    async def _stop_on_request(self) -> None:
        await self._stop.wait()
        raise _Stop

    async def _pump(self, client: aiomqtt.Client) -> None:
        window = asyncio.Semaphore(self._config.mqtt.inflight)
        after = 0  # after a reconnect, everything not yet acknowledged goes again
        async with asyncio.TaskGroup() as tg:
            while True:
                if self._outbox.waiting_deletes >= ACK_FLUSH_ROWS:
                    await self._flush_acks()
                rows = self._outbox.pending(after=after, limit=self._page_rows())
                if not rows:
                    if not await self._wait_wake():
                        await self._flush_acks()  # a second with nothing new to store
                    continue
                for group in self._groups(rows):
                    await window.acquire()
                    tg.create_task(self._publish_rows(client, group, window))
                    after = group[-1].seq

    def _page_rows(self) -> int:
        """Rows read per query: enough to fill the window with whole batches."""
        mqtt = self._config.mqtt
        return min(PAGE_ROWS_MAX, max(4, mqtt.batch) * mqtt.inflight)

    def _groups(self, rows: Sequence[Row]) -> list[Sequence[Row]]:
        size = self._config.mqtt.batch
        if size <= 1:
            return [[row] for row in rows]
        return [rows[i : i + size] for i in range(0, len(rows), size)]

    async def _publish_rows(
        self, client: aiomqtt.Client, rows: Sequence[Row], window: asyncio.Semaphore
    ) -> None:
        try:
            if self._config.mqtt.batch > 1:
                topic = f"{self.base}/events"
                payload = "[" + ",".join(r.body for r in rows) + "]"
            else:
                style = self._config.mqtt.event_topics
                topic, payload = event_topic(self.base, rows[0].type, style), rows[0].body
            started = time.perf_counter()
            await client.publish(
                topic,
                payload,
                qos=1,
                properties=self._event_properties(rows),
                timeout=PUBLISH_TIMEOUT_S,
            )
            self.publish_seconds.observe(time.perf_counter() - started)  # until the PUBACK
            # Deleted with the pipeline's next store, or by the pump within about a second.
            self._outbox.delivered_later(r.seq for r in rows)
            self.published += len(rows)
        finally:
            window.release()

    def _on_result(self, channel: CommandChannel) -> None:
        self._status.count_commands(channel.router)
        self._status.touch()

    async def _status_loop(self, client: aiomqtt.Client) -> None:
        idle = 0.0
        while True:
            await sleep_on_grid(1.0, self._grid_s)
            idle += 1.0
            if self._status.changed or idle >= REFRESH_S:
                await self._publish_status(client, "online")
                idle = 0.0

    async def _publish_info(self, client: aiomqtt.Client, requests: RequestChannel) -> None:
        """The retained ``P/info``, at every connect: what a central server needs to know of
        the gateway before anything else (versions, zones, antennas, outputs, config digest)."""
        await client.publish(
            f"{self.base}/info",
            json.dumps(requests.gateway.info(), separators=(",", ":")),
            qos=1,
            retain=True,
            properties=self._json_properties(),
            timeout=PUBLISH_TIMEOUT_S,
        )

    async def _publish_status(self, client: aiomqtt.Client, state: str) -> None:
        await client.publish(
            f"{self.base}/status",
            self._status.payload(state),
            qos=1,
            retain=True,
            properties=self._json_properties(),
            timeout=PUBLISH_TIMEOUT_S,
        )

    async def _wait_wake(self) -> bool:
        """Wait for new rows; False when none came for about a second (on the grid of such
        timers: ``gateway.clock.second_grid``). The outbox is looked at then all the same."""
        loop = asyncio.get_running_loop()
        woken = True
        try:
            async with asyncio.timeout_at(on_grid(loop.time() + 1.0, self._grid_s)):
                await self._wake.wait()
        except TimeoutError:
            woken = False
        self._wake.clear()
        return woken

    async def _flush_acks(self) -> None:
        await self._outbox.flush_delivered()

    def _json_properties(self) -> Properties | None:
        if self._protocol != aiomqtt.ProtocolVersion.V5:
            return None
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]  # paho is untyped here
        props.ContentType = "application/json"
        return props

    def _event_properties(self, rows: Sequence[Row]) -> Properties | None:
        if self._config.mqtt.batch <= 1:
            # Building paho Properties costs more than the rest of a publish: one object is
            # shared by every single-event message (their type is in the topic already).
            if self._single_props is None or self._single_props[0] != self._protocol:
                self._single_props = (self._protocol, self._json_properties())
            return self._single_props[1]
        props = self._json_properties()
        if props is not None:
            props.UserProperty = [
                ("seq", f"{rows[0].seq}-{rows[-1].seq}"),
                ("count", str(len(rows))),
            ]
        return props

    def _client(self) -> aiomqtt.Client:
        mqtt = self._config.mqtt
        will = aiomqtt.Will(
            f"{self.base}/status", self._status.payload("offline"), qos=1, retain=True
        )
        return brokerclient.client(
            mqtt,
            self._protocol,
            identifier=self._config.client_id,
            will=will,
            max_inflight_messages=mqtt.inflight,
            # aiomqtt calls it with maxsize; every connection shares the one bounded queue.
            queue_type=cast("type[asyncio.Queue[aiomqtt.Message]]", self.inbound.queue.make),
            properties=self._connect_properties(),
        )

    def _connect_properties(self) -> Properties | None:
        if self._protocol != aiomqtt.ProtocolVersion.V5:
            return None  # 3.1.1 cannot say it: the broker's own size limit is all there is
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # paho is untyped here
        props.MaximumPacketSize = MAX_PACKET_BYTES
        props.ReceiveMaximum = RECEIVE_MAXIMUM
        return props

    def _where(self) -> str:
        return f"{self._config.mqtt.host}:{self._config.mqtt.port}"

    def _protocol_name(self) -> str:
        return "5" if self._protocol == aiomqtt.ProtocolVersion.V5 else "3.1.1"


def _manual_acks(client: aiomqtt.Client) -> Acks:
    """Acknowledge QoS 1 messages once handled (``gateway.uplink.inbound``). aiomqtt 2 has no way to
    say so; its paho client (``_client``, the one place the uplink reaches past aiomqtt) does:
    ``manual_ack_set`` and ``ack`` are paho's public API for it."""
    paho = client._client
    paho.manual_ack_set(True)
    return Acks(paho.ack)


def _connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` (from a connection's task group) only says the connection is gone."""
    if isinstance(exc, BaseExceptionGroup):
        return all(_connection_lost(e) for e in exc.exceptions)
    return isinstance(exc, aiomqtt.MqttError)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in exc.exceptions)
    if isinstance(exc, asyncio.CancelledError):
        return "cancelled"
    return f"{type(exc).__name__}: {exc}"


def _first_mqtt_error(group: BaseExceptionGroup[aiomqtt.MqttError]) -> aiomqtt.MqttError:
    first = group.exceptions[0]
    return first if isinstance(first, aiomqtt.MqttError) else _first_mqtt_error(first)
