"""Backpressure for what the broker sends: bounded lanes in front of one consumer.

aiomqtt puts every message it receives into one queue, from paho's read callback on the event
loop; its own bound, when full, discards with a warning per message. ``InboundQueue`` is that
queue, with one bounded lane per kind of message (commands, gateway requests, content) and a
policy instead:

- A message goes to the lane of its topic. One that is larger than the lane allows is refused
  there (its payload is never parsed), as is one whose lane is full: the lane's ``shed`` decides
  what that means (a command is refused as busy, content is counted and dropped) and counts it.
  Topics of no lane are counted and dropped.
- The consumer takes messages from the lanes in turn, so a flood of commands does not hold up
  content and the reverse. One consumer handles them one at a time on the event loop, commands
  at most ``COMMANDS_PER_S`` on average: a lane bounds the memory a flood costs, the rate the
  work, and the loop's other work (serial readers, the pipeline) keeps its turn between messages
  because each message is bounded work.

Acknowledgements are the backpressure. The uplink turns paho's automatic PUBACK off
(``Acks``), and a QoS 1 message is acknowledged only once it was handled (``done``) or refused
at its lane. The broker sends at most its in-flight window of unacknowledged messages (MQTT 5
Receive Maximum, or the broker's own limit on 3.1.1), so a flood waits, or is dropped, at the
broker instead of filling the gateway's TCP receive buffer, where it would hold up the PUBACKs
of the gateway's own events behind it on the same connection. (mosquitto 2.0.11 lets a whole
window follow each PUBACK rather than one message, so there the window bounds less; the lanes
and the rate still do.)

``Inbound`` puts it together for the uplink: the queue, the consumer, the counts of what was
refused (``rejections``, for the status and Prometheus). The queue lives as long as the uplink,
across connections: a message received just before a
connection dropped is still handled, but acknowledged only on the connection it came on (a
message id means nothing on the next one, which starts a clean session).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

import aiomqtt

from gateway.commands.channel import CommandChannel
from gateway.commands.models import MAX_PAYLOAD_BYTES as MAX_COMMAND_BYTES
from gateway.rules.content import MAX_PAYLOAD_BYTES as MAX_CONTENT_BYTES
from gateway.rules.content import ContentSubscription
from gateway.uplink.requests import MAX_PAYLOAD_BYTES as MAX_REQUEST_BYTES
from gateway.uplink.requests import RequestChannel
from gateway.wire.tokenbucket import TokenBucket

# Named, not __name__: the journal shows this name on every line, wherever the module lives.
log = logging.getLogger("gateway.inbound")

COMMANDS_WAITING: Final = 1024  # commands received, not yet screened; more are refused busy
CONTENT_WAITING: Final = 4096  # content messages not yet applied; more are dropped, counted
REQUESTS_WAITING: Final = 64  # gateway requests received, not yet screened; more are refused
CONSUME_BATCH: Final = 256  # messages handled back to back, ~5 ms of bad commands
# Commands handled per second on average: what a flood of them may cost. On the build machine a
# message costs ~0.15 ms (two thirds of it paho's decoding), so 2,000 a second hold a third of a
# core; a central server sends a few commands a minute.
COMMANDS_PER_S: Final = 2000.0
COMMANDS_BURST: Final = 500.0
TOPIC_SHOWN: Final = 200  # characters of a topic quoted in a log line

Shed = Callable[[aiomqtt.Message, str], None]  # the message and why: "busy" or "too_large"
Ack = Callable[[int, int], object]  # (message id, qos): paho's Client.ack


class Acks:
    """The acknowledgements of one connection: QoS 1 and 2 messages are acknowledged by ``ack``
    once handled, not by paho on arrival."""

    def __init__(self, ack: Ack) -> None:
        self.ack = ack


@dataclass
class Lane:
    """Messages on topics under ``prefix``, at most ``capacity`` waiting, ``max_bytes`` each."""

    kind: str
    prefix: str
    capacity: int
    max_bytes: int
    shed: Shed
    waiting: deque[aiomqtt.Message] = field(default_factory=deque)

    def takes(self, topic: str) -> bool:
        return topic.startswith(self.prefix)


class InboundQueue(asyncio.Queue[aiomqtt.Message]):
    """aiomqtt's incoming queue (``queue_type``), bounded per lane; see the module docstring."""

    def __init__(self, lanes: Sequence[Lane]) -> None:
        self._lanes = list(lanes)
        self._turn = 0
        self._acks: Acks | None = None  # of the connection messages arrive on now
        self._unacked: dict[int, Acks] = {}  # id(message) -> the connection it came on
        self.stray = 0  # messages on topics of no lane
        super().__init__()

    def bind(self, acks: Acks | None) -> None:
        """Messages from now on came on the connection ``acks`` belongs to (None: no
        connection, or one that acknowledges on arrival)."""
        self._acks = acks

    def done(self, message: aiomqtt.Message) -> None:
        """``message`` was handled: acknowledge it, if its connection is still the current."""
        acks = self._unacked.pop(id(message), None)
        if acks is not None and acks is self._acks:
            acks.ack(message.mid, message.qos)

    # asyncio.Queue's extension points (as PriorityQueue uses them) and the two methods that
    # read its storage directly; the base class keeps the waiting getters. ``maxsize`` stays 0,
    # so the base class never refuses a put itself.
    def _init(self, maxsize: int) -> None:
        pass

    def qsize(self) -> int:
        return sum(len(lane.waiting) for lane in self._lanes)

    def empty(self) -> bool:
        return not any(lane.waiting for lane in self._lanes)

    def _put(self, item: aiomqtt.Message) -> None:
        if item.qos and self._acks is not None:
            self._unacked[id(item)] = self._acks
        topic = item.topic.value
        lane = next((lane for lane in self._lanes if lane.takes(topic)), None)
        if lane is None:
            self.stray += 1
        elif len(item.payload) > lane.max_bytes:
            lane.shed(item, "too_large")
        elif len(lane.waiting) >= lane.capacity:
            lane.shed(item, "busy")
        else:
            lane.waiting.append(item)
            return
        self.done(item)  # refused here: handled

    def _get(self) -> aiomqtt.Message:
        for _ in self._lanes:
            lane = self._lanes[self._turn]
            self._turn = (self._turn + 1) % len(self._lanes)
            if lane.waiting:
                return lane.waiting.popleft()
        raise asyncio.QueueEmpty  # the base class calls _get only when empty() is false

    def make(self, maxsize: int = 0) -> InboundQueue:
        """For aiomqtt's ``queue_type``, which it calls with ``maxsize``: every client of the
        uplink gets this one queue."""
        return self


@dataclass
class Failures:
    """Messages whose handler raised: counted per kind, logged (rate-limited by the journal
    filter: the first argument is the kind), never passed on to end the connection."""

    counts: Counter[str] = field(default_factory=Counter)

    def record(self, kind: str, topic: str, exc: Exception) -> None:
        self.counts[kind] += 1
        log.error(
            "%s message on %s could not be handled: %s: %s",
            kind,
            topic[:TOPIC_SHOWN],
            type(exc).__name__,
            exc,
            exc_info=exc,
        )


class Inbound:
    """What the uplink does with what the broker sends: the queue (aiomqtt's, ``queue.make``),
    the consumer of one connection (``consume``), and the figures for the status."""

    def __init__(
        self,
        commands: CommandChannel | None,
        content: ContentSubscription | None,
        touch: Callable[[], None],
        requests: RequestChannel | None = None,
    ) -> None:
        self.commands, self.content, self.requests = commands, content, requests
        self._touch = touch  # the status should be published soon
        self.queue = InboundQueue(self._lanes())
        self._failures = Failures()
        self._rate = TokenBucket(COMMANDS_PER_S, COMMANDS_BURST)

    def bind(self, acks: Acks | None) -> None:
        self.queue.bind(acks)

    async def consume(self, client: aiomqtt.Client) -> None:
        """Handle what the queue lets through, one message at a time, commands at most
        ``COMMANDS_PER_S`` on average. aiomqtt's iterator costs a task and a wait per message;
        what is already queued behind one is taken at once, up to CONSUME_BATCH, before the
        loop's other work has its turn."""
        async for message in client.messages:
            await self._handle(message)
            for _ in range(CONSUME_BATCH - 1):
                if self.queue.empty():
                    break
                await self._handle(self.queue.get_nowait())

    async def _handle(self, message: aiomqtt.Message) -> None:
        """A command waits for the rate to allow it; meanwhile nothing more is acknowledged, so
        the broker holds the rest back (and drops what its queue for this client cannot hold).
        Content is not held back: it is retained state, bounded per message, that arrives as
        one burst after a connect, and what its lane cannot take is lost until the next."""
        if self._is_command(message) and not self._rate.take():
            while not self._rate.take():
                await asyncio.sleep(self._rate.wait_s())
        self._receive(message)

    def _is_command(self, message: aiomqtt.Message) -> bool:
        """Commands and gateway requests share the rate: both make the gateway act."""
        topic = message.topic.value
        if self.requests is not None and topic.startswith(self.requests.prefix):
            return True
        return self.commands is not None and topic.startswith(self.commands.prefix)

    def deliver(self, message: aiomqtt.Message) -> None:
        """What paho's read callback and the consumer do with one message, without a
        connection (the fuzz harness, tests): queue it, then handle what the queue holds."""
        self.queue.put_nowait(message)
        while True:
            try:
                self._receive(self.queue.get_nowait())
            except asyncio.QueueEmpty:
                return

    def figures(self) -> dict[str, object]:
        """For the status counters: rejections (when there are any) and the content cache."""
        out: dict[str, object] = {}
        rejected = self.rejections()
        if rejected:
            out["inbound_rejected"] = rejected
        if self.content is not None:
            store = self.content.store
            out["content"] = {
                "entries": len(store),
                "bytes": store.size,
                "applied": store.applied,
                "evicted": store.evicted,
            }
        return out

    def rejections(self) -> dict[str, dict[str, int]]:
        """Messages not handled as asked, by kind and reason (status and metrics)."""
        out: dict[str, Counter[str]] = {
            "command": Counter(),
            "content": Counter(),
            "request": Counter(),
        }
        if self.commands is not None:
            out["command"].update(self.commands.router.refused_by)
            out["command"]["unanswered"] = self.commands.unanswered
        if self.content is not None:
            out["content"].update(self.content.store.refused_by)
            out["content"]["busy"] = self.content.shed
        if self.requests is not None:
            out["request"].update(self.requests.refused_by)
            out["request"]["unanswered"] = self.requests.unanswered
        for kind, n in self._failures.counts.items():
            out[kind]["handler_error"] = n
        out["other"] = Counter(stray=self.queue.stray)
        return {
            kind: {k: n for k, n in c.items() if n} for kind, c in out.items() if any(c.values())
        }

    def _receive(self, message: aiomqtt.Message) -> None:
        topic, payload = message.topic.value, bytes(message.payload)
        commands, requests = self.commands, self.requests
        is_command = commands is not None and topic.startswith(commands.prefix)
        is_request = requests is not None and topic.startswith(requests.prefix)
        try:
            if commands is not None and is_command:
                commands.receive(topic, payload)
            elif requests is not None and is_request:
                requests.receive(topic, payload)
            elif self.content is not None:
                self.content.receive(topic, payload)
                self._touch()  # its counters changed: published within a second
        except Exception as exc:
            # A bug met by one message is that message's failure: counted and logged, and the
            # connection and the daemon go on (the one broad catch besides supervised).
            kind = "command" if is_command else "request" if is_request else "content"
            self._failures.record(kind, topic, exc)
            self._touch()
        finally:
            self.queue.done(message)

    def _lanes(self) -> list[Lane]:
        lanes = []
        if self.commands is not None:
            channel = self.commands
            lanes.append(
                Lane("command", channel.prefix, COMMANDS_WAITING, MAX_COMMAND_BYTES, channel.refuse)
            )
        if self.requests is not None:
            requests = self.requests
            lanes.append(
                Lane("request", requests.prefix, REQUESTS_WAITING, MAX_REQUEST_BYTES,
                     requests.refuse)
            )  # fmt: skip
        if self.content is not None:
            content = self.content
            lanes.append(
                Lane("content", content.prefix, CONTENT_WAITING, MAX_CONTENT_BYTES, content.refuse)
            )
        return lanes
