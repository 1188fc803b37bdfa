"""A simulated LCUS relay board on a pty.

It decodes commands with the driver's own ``CommandDecoder`` and keeps the coil state of each
channel, plus a log of every switch with the loop time, as ground truth for output tests.
A multi-channel board answers the ``FF`` status query with ``ChannelStatus`` lines; set
``answers_status=False`` to model the single-channel boards that stay silent. A command for a
channel the board does not have is ignored, as the hardware does. A replug (new port generation)
powers the board down, so every relay drops out. ``status_noise`` is written before each status
reply (line noise the gateway's decoder must skip), and ``stuck`` channels ignore commands, as a
welded contact or a dead coil driver would.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from drivers.relay import STATUS_QUERY, ChannelStatus, CommandDecoder, RelayCommand
from firmware_sim.pty import SimPort, incoming_frames


@dataclass(frozen=True, slots=True)
class Switch:
    t: float
    channel: int
    on: bool


class RelayBoardSim:
    def __init__(self, port: SimPort, *, channels: int = 2, answers_status: bool = True) -> None:
        self.port = port
        self.channels = channels
        self.answers_status = answers_status
        self.decoder = CommandDecoder()
        self.states = dict.fromkeys(range(1, channels + 1), False)
        self.switches: list[Switch] = []
        self.ignored = 0  # commands for channels this board does not have
        self.status_noise = b""
        self.stuck: set[int] = set()
        self.queries = 0
        self._generation = port.generation

    async def run(self) -> None:
        """Serve until the port is closed."""
        # Annotated: mypy would join the union the decoder yields into object.
        frames: AsyncIterator[RelayCommand | bytes] = incoming_frames(
            self.port, self._decoder_after_replug
        )
        async for frame in frames:
            await self._handle(frame)

    def _decoder_after_replug(self) -> CommandDecoder:
        # A replug is a power cycle for the board: every relay drops. The decoder stays.
        if self.port.generation != self._generation:
            self._generation = self.port.generation
            self.states = dict.fromkeys(self.states, False)
        return self.decoder

    async def _handle(self, frame: RelayCommand | bytes) -> None:
        if isinstance(frame, RelayCommand):
            self._switch(frame)
        elif frame == STATUS_QUERY and self.answers_status:
            self.queries += 1
            reply = b"".join(ChannelStatus(ch, on).to_bytes() for ch, on in self.states.items())
            await self.port.write(self.status_noise + reply)

    def _switch(self, command: RelayCommand) -> None:
        if command.channel not in self.states or command.channel in self.stuck:
            self.ignored += 1
            return
        self.states[command.channel] = command.on
        now = asyncio.get_running_loop().time()
        self.switches.append(Switch(now, command.channel, command.on))
