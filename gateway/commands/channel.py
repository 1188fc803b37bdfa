"""The MQTT side of commands: messages from ``P/cmd/+`` in, results out, across reconnects.

Commands run in tasks of their own, outside any connection, so a dropped connection never
cancels an actuation halfway. Their results wait in a bounded memory queue until the broker has
acknowledged them, and go out on whichever connection is up. Results are volatile: a restart
loses unsent ones, and a central server that got none resends the command_id, which is refused as
a replay naming the first outcome.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Final

import aiomqtt
from paho.mqtt.properties import Properties

from gateway.commands.result import CommandResult
from gateway.commands.router import CommandRouter

log = logging.getLogger(__name__)

RESULTS_MAX: Final = 1000  # unsent results kept; the oldest go first
RESULT_EXPIRY_S: Final = 3600  # a result nobody picked up within an hour is stale
PUBLISH_TIMEOUT_S: Final = 30.0


class CommandChannel:
    def __init__(
        self,
        router: CommandRouter,
        base: str,
        on_result: Callable[[CommandRouter], None] | None = None,
    ) -> None:
        self.router = router
        self.base = base
        self.topic_filter = f"{base}/cmd/+"
        self._prefix = f"{base}/cmd/"
        self._on_result = on_result
        self._tasks: set[asyncio.Task[None]] = set()
        self._results: deque[CommandResult] = deque(maxlen=RESULTS_MAX)
        self._ready = asyncio.Event()

    def receive(self, topic: str, payload: bytes) -> None:
        """Start handling a message; topics other than ``P/cmd/{output_id}`` are ignored."""
        output_id = topic.removeprefix(self._prefix)
        if output_id == topic or not output_id or "/" in output_id:
            return
        task = asyncio.create_task(self._run(output_id, payload))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def cancel(self) -> None:
        for task in self._tasks:
            task.cancel()

    async def publish_results(
        self, client: aiomqtt.Client, window: int, properties: Callable[[], Properties | None]
    ) -> None:
        """Publish results as they come, up to ``window`` in flight, until cancelled."""
        gate = asyncio.Semaphore(window)
        async with asyncio.TaskGroup() as tg:
            while True:
                self._ready.clear()
                while self._results:
                    await gate.acquire()
                    result = self._results.popleft()
                    tg.create_task(self._publish(client, result, gate, properties()))
                await self._ready.wait()

    async def _run(self, output_id: str, payload: bytes) -> None:
        result = await self.router.handle(output_id, payload)
        if len(self._results) == RESULTS_MAX:
            log.warning("%d command results unsent; dropping the oldest", RESULTS_MAX)
        self._results.append(result)
        self._ready.set()
        if self._on_result is not None:
            self._on_result(self.router)

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
        except BaseException:
            self._results.appendleft(result)  # sent again on the next connection
            raise
        finally:
            gate.release()
