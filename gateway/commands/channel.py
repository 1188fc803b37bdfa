"""The MQTT side of commands: messages from ``P/cmd/+`` in, results out, across reconnects.

``receive`` screens a message at once (``CommandRouter.screen``: bounded, cheap, no storage) and
hands a command that passed to ``run``, which executes it in a task of its own TaskGroup: at most
``MAX_PENDING`` at a time (the router refuses more as busy), outside any connection, so a
dropped connection never cancels an actuation halfway.

Results wait in memory until the broker has acknowledged them and go out on whichever
connection is up, in two queues. Results of commands that were executed (ok or failed) go
first and are never held back. Refusals are cheap to cause, so their publishing is bounded:
``REFUSALS_PER_S`` on average (bursts of ``REFUSAL_BURST``), ``REFUSALS_IN_FLIGHT`` awaiting
their PUBACK, at most ``REFUSALS_MAX`` waiting, the oldest dropped beyond that and counted as
``unanswered``. A result whose topic is not a
valid MQTT topic name (``result.valid_topic``: an output id of tens of kilobytes) is never
published: counted as ``unanswered`` and logged. Results are volatile: a restart loses unsent
ones, and a central server that got none resends the command_id, which is refused as a replay
naming the first outcome.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Final

import aiomqtt
from paho.mqtt.properties import Properties

from gateway.commands.models import MAX_PAYLOAD_BYTES
from gateway.commands.result import CommandResult, valid_topic
from gateway.commands.router import Accepted, CommandRouter, shown
from gateway.runtime.ratelog import Throttle
from gateway.wire.tokenbucket import TokenBucket
from gateway.wire.topics import PUBLISH_TIMEOUT_S

log = logging.getLogger(__name__)
_unanswered = Throttle(log, logging.WARNING)

RESULTS_MAX: Final = 1000  # unsent results of executed commands kept; the oldest go first
REFUSALS_MAX: Final = 1000  # unsent refusals kept; the oldest go first
REFUSALS_PER_S: Final = 50.0  # refusals published per second on average
REFUSAL_BURST: Final = 200.0
# Refusals awaiting their PUBACK at once: they must never take the client's in-flight window
# from events, and a broker slow to acknowledge slows them down further.
REFUSALS_IN_FLIGHT: Final = 4
RESULT_EXPIRY_S: Final = 3600  # a result nobody picked up within an hour is stale


class CommandChannel:
    def __init__(
        self,
        router: CommandRouter,
        base: str,
        on_result: Callable[[CommandChannel], None] | None = None,
    ) -> None:
        self.router = router
        self.base = base
        self.topic_filter = f"{base}/cmd/+"
        self.prefix = f"{base}/cmd/"
        self._on_result = on_result
        self._accepted: asyncio.Queue[Accepted] = asyncio.Queue()  # bounded by MAX_PENDING
        self._results: deque[CommandResult] = deque()
        self._refusals: deque[CommandResult] = deque()
        self._budget = TokenBucket(REFUSALS_PER_S, REFUSAL_BURST)
        self._ready = asyncio.Event()
        self.unanswered = 0  # results never published: dropped, or no valid topic

    def receive(self, topic: str, payload: bytes) -> None:
        """Screen a message; topics other than ``P/cmd/{output_id}`` are ignored."""
        output_id = self._output_id(topic)
        if output_id is None:
            return
        screened = self.router.screen(output_id, payload)
        if isinstance(screened, CommandResult):
            self._answer(screened, refusal=True)
        else:
            self._accepted.put_nowait(screened)

    def refuse(self, message: aiomqtt.Message, code: str) -> None:
        """A message the inbound queue did not take: its lane was full (``code`` "busy"), or
        it was too large ("too_large")."""
        output_id = self._output_id(message.topic.value)
        if output_id is None:
            return
        if code == "busy":
            reason = "busy: too many commands waiting"
        else:
            reason = f"payload of {len(message.payload)} bytes exceeds {MAX_PAYLOAD_BYTES}"
        self._answer(self.router.refuse(output_id, reason, code), refusal=True)

    async def run(self) -> None:
        """Execute screened commands until cancelled (which cancels those in progress)."""
        async with asyncio.TaskGroup() as tg:
            while True:
                accepted = await self._accepted.get()
                tg.create_task(self._execute(accepted))

    async def publish_results(
        self, client: aiomqtt.Client, window: int, properties: Callable[[], Properties | None]
    ) -> None:
        """Publish results as they come, up to ``window`` in flight, until cancelled."""
        gates = {False: asyncio.Semaphore(window), True: asyncio.Semaphore(REFUSALS_IN_FLIGHT)}
        async with asyncio.TaskGroup() as tg:
            while True:
                result = self._next_result()
                if result is None:
                    await self._wait_for_result()
                    continue
                gate = gates[result.refused]
                await gate.acquire()
                tg.create_task(self._publish(client, result, gate, properties()))

    def _output_id(self, topic: str) -> str | None:
        """The output id of a ``P/cmd/+`` topic (an empty level is one: it gets its refusal),
        None for any other topic."""
        if not topic.startswith(self.prefix):
            return None
        output_id = topic[len(self.prefix) :]
        return None if "/" in output_id else output_id

    async def _execute(self, accepted: Accepted) -> None:
        result = await self.router.run(accepted)
        self._answer(result, refusal=result.refused)

    def _answer(self, result: CommandResult, *, refusal: bool) -> None:
        if not valid_topic(result.topic(self.base)):
            self.unanswered += 1
            message = "no result for a command to %s: its topic is not a valid MQTT topic"
            _unanswered("topic", message, shown(result.output_id))
        else:
            queue, limit = (
                (self._refusals, REFUSALS_MAX) if refusal else (self._results, RESULTS_MAX)
            )
            if len(queue) >= limit:
                queue.popleft()
                self.unanswered += 1
                _unanswered("full", "%d command results unsent; dropping the oldest", limit)
            queue.append(result)
            self._ready.set()
        if self._on_result is not None:
            self._on_result(self)

    def _next_result(self) -> CommandResult | None:
        if self._results:
            return self._results.popleft()
        if self._refusals and self._budget.take():
            return self._refusals.popleft()
        return None

    async def _wait_for_result(self) -> None:
        self._ready.clear()
        timeout = self._budget.wait_s() if self._refusals else None
        try:
            async with asyncio.timeout(timeout):
                await self._ready.wait()
        except TimeoutError:
            pass

    async def _publish(
        self,
        client: aiomqtt.Client,
        result: CommandResult,
        gate: asyncio.Semaphore,
        props: Properties | None,
    ) -> None:
        if props is not None:
            props.MessageExpiryInterval = RESULT_EXPIRY_S
        try:
            await client.publish(
                result.topic(self.base),
                result.to_json(),
                qos=1,
                properties=props,
                timeout=PUBLISH_TIMEOUT_S,
            )
        except ValueError as exc:
            # paho refuses what it cannot encode; this result can never be sent.
            self.unanswered += 1
            _unanswered("client", "no result for a command to %s: %s", shown(result.output_id), exc)
        except BaseException:
            (self._refusals if result.refused else self._results).appendleft(result)
            raise  # the connection is gone (or we stop): sent again on the next one
        finally:
            gate.release()
