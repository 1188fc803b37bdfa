"""The consumer: one member of an MQTT v5 shared-subscription group, landing events in a store.

Per connection, one task takes what has arrived in aiomqtt's queue (paho fills it from the
socket's reader callback, through ``central.readbuffer``) and checks it (``central.records``);
another commits what has been checked (up to ``max_batch_messages`` messages and, unless one
message holds more, ``MAX_ROWS`` events) in one transaction on the database thread, and only
then acknowledges each of those messages (paho's manual acks; the PUBACKs of a batch go out in
one write, ``central.pahoacks``). The next messages are checked while the database commits. So
a consumer that dies, however abruptly, has acknowledged only what is committed; the broker
sends the rest again (to it, when it resumes its persistent session) and the unique ``id``
drops what was committed but not yet acknowledged. The broker sends at most
``receive_maximum`` unacknowledged messages: that bounds the memory a flood can take, checked
messages waiting for the database included.

Rejected messages (``records.Rejected``) are counted by reason, logged at most once a minute
per reason, and acknowledged: they can never be stored. A batch the database refuses as data
(a value the backend cannot hold) is retried message by message, and the messages it still
refuses are rejected the same way (``database``). A database that is unreachable is retried
with backoff, holding the messages unacknowledged; the consumer never exits on input.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Final, NamedTuple

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from central import pahoacks, pahotables, readbuffer
from central.losswatch import LossWatch
from central.records import (
    MAX_BATCH_BYTES,
    EventRow,
    Rejected,
    StatusRow,
    classify,
    event_rows,
    status_row,
)
from central.settings import Settings
from central.store import Inserted, Store
from gateway.errors import UplinkError
from gateway.runtime.ratelog import Throttle
from gateway.telemetry import Histogram
from gateway.uplink import brokerclient

log = logging.getLogger("central.consumer")

BACKOFF_S: Final = (0.5, 30.0)
# Events per transaction, beyond max_batch_messages (a message is never split): a backlog of
# gateway batches is committed in parts while the next part is checked, not all at once after.
MAX_ROWS: Final = 5_000


@dataclass
class Figures:
    messages: int = 0
    stored: int = 0
    repeats: int = 0
    conflicts: int = 0
    statuses: int = 0
    gaps_reported: int = 0
    open_gaps: int = 0  # as of the loss watch's last look
    rejected: Counter[str] = field(default_factory=Counter)
    # From a batch handed to the database thread to its commit (or its rejection).
    commit_seconds: Histogram = field(default_factory=Histogram)

    def add(self, inserted: Inserted) -> None:
        self.stored += inserted.stored
        self.repeats += inserted.repeats
        self.conflicts += inserted.conflicts


class _Checked(NamedTuple):
    message: aiomqtt.Message
    rows: list[EventRow]
    status: StatusRow | None


class Consumer:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        watch: LossWatch | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.figures = Figures()
        self.connected = asyncio.Event()
        self.connections = 0
        self._store = store
        self._watch = watch
        self._wall = wall
        self._db = ThreadPoolExecutor(1, thread_name_prefix="central-db")
        self._throttle = Throttle(log, logging.WARNING)

    async def run(self) -> None:
        """Consume until cancelled; a lost connection is retried with jittered backoff."""
        delay = BACKOFF_S[0]
        try:
            while True:
                try:
                    await self._session()
                # UplinkError: a password or TLS file that cannot be read, which an operator
                # may yet fix; retried like a broker that is away, never an exit.
                except* (aiomqtt.MqttError, UplinkError) as lost:
                    log.warning("broker %s: %s", self.settings.broker, lost.exceptions[0])
                    if self.connected.is_set():
                        delay = BACKOFF_S[0]  # a connection that worked: try again soon
                self.connected.clear()
                await asyncio.sleep(random.uniform(0, delay))
                delay = min(delay * 2, BACKOFF_S[1])
        finally:
            self._db.shutdown(wait=True)

    async def _session(self) -> None:
        s = self.settings
        client = brokerclient.client(
            s.mqtt(), aiomqtt.ProtocolVersion.V5, identifier=s.identifier(), clean_start=False,
            properties=self._connect_properties(),
        )  # fmt: skip
        # Before the connection exists: a resumed session's queued messages arrive right after
        # the CONNACK, and paho would acknowledge them on arrival otherwise. aiomqtt 2 has no
        # say in this; paho's manual_ack_set and ack are public API.
        client._client.manual_ack_set(True)
        readbuffer.install(client)
        pahotables.install()
        async with client:
            prefix = f"$share/{s.group}/{s.topic_prefix}/+/+"
            await client.subscribe([(f"{prefix}/event/#", 1), (f"{prefix}/events", 1)])
            # Retained status needs a plain subscription (v5 sends no retained messages to a
            # shared one); every member records it, the table drops the repeats.
            await client.subscribe(f"{s.topic_prefix}/+/+/status", qos=1)
            self.connected.set()
            self.connections += 1
            log.info(  # the count first: the log's repeat filter keys on the first argument
                "connection %d: connected to %s as %s, group %s",
                self.connections, s.broker, s.identifier(), s.group,
            )  # fmt: skip
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._write(client))
                if self._watch is not None:
                    tg.create_task(self._watch_loop(self._watch))

    def _connect_properties(self) -> Properties:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # paho is untyped here
        props.SessionExpiryInterval = self.settings.session_expiry_s
        props.ReceiveMaximum = self.settings.receive_maximum
        props.MaximumPacketSize = MAX_BATCH_BYTES + 64 * 1024
        return props

    async def _write(self, client: aiomqtt.Client) -> None:
        """Checking and committing overlap: one task checks what arrives while the other commits
        what was checked before it, then acknowledges that."""
        waiting: deque[tuple[aiomqtt.Message, _Checked | None]] = deque()
        ready = asyncio.Event()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._take(client, waiting, ready))
            tg.create_task(self._land(client, waiting, ready))

    async def _take(
        self,
        client: aiomqtt.Client,
        waiting: deque[tuple[aiomqtt.Message, _Checked | None]],
        ready: asyncio.Event,
    ) -> None:
        messages = client.messages
        # aiomqtt's iterator costs a task and a loop turn per message, more than the rest of a
        # message's handling; it waits for the first message (it sees a lost connection), and
        # what has arrived with it is taken straight from the queue behind it.
        arrived = client._queue
        while True:
            message = await anext(messages)
            taken, rows = 1, self._take_one(message, waiting)
            while len(messages) and taken < self.settings.max_batch_messages and rows < MAX_ROWS:
                taken, rows = taken + 1, rows + self._take_one(arrived.get_nowait(), waiting)
            ready.set()
            await asyncio.sleep(0)  # a commit that has finished, and the socket, come first

    def _take_one(
        self, message: aiomqtt.Message, waiting: deque[tuple[aiomqtt.Message, _Checked | None]]
    ) -> int:
        checked = self._check(message)
        waiting.append((message, checked))
        return 0 if checked is None else len(checked.rows)

    async def _land(
        self,
        client: aiomqtt.Client,
        waiting: deque[tuple[aiomqtt.Message, _Checked | None]],
        ready: asyncio.Event,
    ) -> None:
        loop = asyncio.get_running_loop()
        paho = client._client
        while True:
            await ready.wait()
            batch: list[aiomqtt.Message] = []
            checked: list[_Checked] = []
            rows = 0
            while waiting and len(batch) < self.settings.max_batch_messages and rows < MAX_ROWS:
                message, ok = waiting.popleft()
                batch.append(message)
                if ok is not None:
                    checked.append(ok)
                    rows += len(ok.rows)
            if not waiting:
                ready.clear()
            if checked:
                started = time.perf_counter()
                await loop.run_in_executor(self._db, self._commit, checked)
                self.figures.commit_seconds.observe(time.perf_counter() - started)
            pahoacks.ack_all(paho, batch)

    def _check(self, message: aiomqtt.Message) -> _Checked | None:
        self.figures.messages += 1
        payload = message.payload
        try:
            if not isinstance(payload, bytes):
                raise Rejected("malformed", "payload is not bytes")
            topic = classify(message.topic.value, self.settings.topic_prefix)
            if topic.kind == "status":
                return _Checked(message, [], status_row(topic, payload))
            return _Checked(message, event_rows(topic, payload), None)
        except Rejected as exc:
            self._reject(exc.code, message.topic.value, str(exc))
            return None

    def _reject(self, code: str, topic: str, detail: str) -> None:
        self.figures.rejected[code] += 1
        self._throttle(code, "rejected a message on %s (%s): %s", topic[:200], code, detail)

    def _commit(self, checked: Sequence[_Checked]) -> None:
        """On the database thread: everything in one transaction, or, when the database refuses
        the data, message by message."""
        now = self._wall()
        try:
            self._store_all(checked, now)
        except Exception as exc:
            if not self._store.is_data_error(exc) or len(checked) == 1:
                if self._store.is_data_error(exc):
                    self._reject("database", checked[0].message.topic.value, str(exc))
                    return
                raise
            for one in checked:
                self._commit([one])

    def _store_all(self, checked: Sequence[_Checked], now: float) -> None:
        rows = [row for c in checked for row in c.rows]
        statuses = [c.status for c in checked if c.status is not None]
        self._with_retry(lambda: self.figures.add(self._store.insert(rows, now)) if rows else None)
        if statuses:
            self._with_retry(lambda: self._record(statuses, now))

    def _record(self, statuses: Sequence[StatusRow], now: float) -> None:
        for new in self._store.record_status(statuses, now):
            self.figures.statuses += 1
            level = logging.INFO if new.state == "online" else logging.WARNING
            log.log(level, "gateway %s/%s %s since %s", new.store, new.gateway, new.state, new.ts)

    def _with_retry(self, work: Callable[[], None]) -> None:
        """``work``, again and again while the database is unreachable (not while it refuses)."""
        delay = BACKOFF_S[0]
        while True:
            try:
                work()
                return
            except Exception as exc:
                if not self._store.is_unreachable(exc):
                    raise
                self._throttle("unreachable", "database unreachable, retrying: %s", exc)
                time.sleep(random.uniform(0, delay))
                delay = min(delay * 2, BACKOFF_S[1])
                self._store.reconnect()

    async def _watch_loop(self, watch: LossWatch) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.settings.check_s)
            await loop.run_in_executor(self._db, self._look, watch)

    def _look(self, watch: LossWatch) -> None:
        def once() -> None:
            self.figures.gaps_reported += len(watch.check(self._wall()))
            self.figures.open_gaps = watch.open_gaps()

        self._with_retry(once)
