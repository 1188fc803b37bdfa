"""The session for an NXP PN532 on HSU, driving the driver's ``Pn532Poller``.

The poller decides what to send and what a frame means; this session owns the port, the waits
and the pace: one InListPassiveTarget every ``poll_interval_s`` once the chip is configured.
Each card found is a read of a customer in the reader's zone; the same card is found again on
every poll while it stays, and the presence stage dedups (docs/drivers/pn532.md).

A lost exchange (a time-out, the syntax-error frame, a garbled response) restarts the chip's
set-up within the session: one corrupted byte should not cost a port reopen. Only
``MAX_CONSECUTIVE_LOSSES`` in a row raise, for the supervisor to reopen with backoff.
"""

from __future__ import annotations

import asyncio
from typing import Final, assert_never

from drivers.errors import DeviceError
from drivers.pn532 import (
    CardsPresent,
    ChipLost,
    Configured,
    NoCard,
    Pn532Decoder,
    Pn532Frame,
    Pn532Poller,
    PollerEvent,
    State,
)
from drivers.transport import open_serial
from gateway.config import Pn532Reader
from gateway.devices.base import DeviceContext
from gateway.devices.link import Link
from gateway.health import DeviceState
from gateway.reads.batch import SubjectKind

ANTENNA: Final = 0
MAX_CONSECUTIVE_LOSSES: Final = 3


class Pn532Session:
    def __init__(self, config: Pn532Reader) -> None:
        self.config = config
        self.poller = Pn532Poller()
        self.losses = 0
        self.decoder = Pn532Decoder()

    def frame_counters(self) -> dict[str, int]:
        return self.decoder.stats.rejections()

    async def run(self, ctx: DeviceContext) -> None:
        reader, writer = await open_serial(self.config.port, baudrate=self.config.baudrate)
        self.decoder.drop_partial()  # a half frame from before a reopen is gone
        link: Link[Pn532Frame] = Link(reader, writer, self.decoder, self.config.port)
        self.poller, self.losses = Pn532Poller(), 0
        try:
            await link.send(self.poller.start())
            while True:
                await self._step(link, ctx)
        finally:
            link.close()

    async def _step(self, link: Link[Pn532Frame], ctx: DeviceContext) -> None:
        poller = self.poller
        if poller.state is State.IDLE:
            await asyncio.sleep(self.config.poll_interval_s)
            await link.send(poller.poll())
            return
        if poller.state is State.OFFLINE:
            await link.send(poller.start())
            return
        timeout = poller.timeout_s
        assert timeout is not None  # every other state awaits a frame
        try:
            # The wait is for a frame, not for bytes: a chunk of line noise completes none and
            # must not start the wait over, or constant noise would keep the chip "ok" forever.
            async with asyncio.timeout(timeout):
                frames = await link.receive()
                while not frames:
                    frames = await link.receive()
        except TimeoutError:
            reaction = poller.timed_out()
            await link.send(reaction.send)
            self._handle(reaction.events, ctx)
            return
        for frame in frames:
            reaction = poller.receive(frame)
            await link.send(reaction.send)
            self._handle(reaction.events, ctx)

    def _handle(self, events: tuple[PollerEvent, ...], ctx: DeviceContext) -> None:
        for event in events:
            match event:
                case Configured(firmware):
                    ctx.set_state(DeviceState.OK, f"{firmware.name}, polling")
                case CardsPresent(targets):
                    self.losses = 0
                    for target in targets:
                        ctx.emit_read(target.raw_id, ANTENNA, kind=SubjectKind.CUSTOMER)
                case NoCard():
                    self.losses = 0
                case ChipLost(reason):
                    self._lost(reason, ctx)
                case _:
                    assert_never(event)

    def _lost(self, reason: str, ctx: DeviceContext) -> None:
        self.losses += 1
        ctx.log.info("PN532 exchange lost (%s), %d in a row", reason, self.losses)
        if self.losses >= MAX_CONSECUTIVE_LOSSES:
            raise DeviceError(f"PN532 lost {self.losses} exchanges in a row, last: {reason}")
