"""The session for LCUS relay boards (docs/drivers/relay.md).

The board never acknowledges a switch. A board configured with ``answers_status`` is asked for
its channel states after every switch, and a channel that does not read as commanded is
switched again within the deadline; a board without it is trusted once the bytes are written.

The session remembers what each channel was last told. A replug powers the board down (every
relay drops out), so after a reconnect it switches the channels back to that: a door held open
by the gateway stays open across a flaky USB hub. A switch-back that fell due meanwhile counts
as told, so a pulse that ended during the outage is not replayed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Final

from drivers.relay import STATUS_QUERY, RelayCommand, StatusDecoder
from drivers.sentinel import NEED_DATA
from gateway.commands import AnyCommand, OutputKind, RelaySwitch
from gateway.config.outputs import RelayOutput
from gateway.health import DeviceState, StateListener
from gateway.outputs.base import (
    ACTION_DEADLINE_S,
    FollowUp,
    InvalidCommandError,
    OutputSession,
    Planned,
    RetryableError,
)
from gateway.outputs.port import SerialPort

STATUS_TIMEOUT_S: Final = 0.3  # a 9600-baud board sends its 8 status lines in ~100 ms


@dataclass(frozen=True, slots=True)
class Switch:
    channel: int
    on: bool

    def __str__(self) -> str:
        return f"switch channel {self.channel} {'on' if self.on else 'off'}"


class RelaySession(OutputSession[SerialPort, Switch]):
    def __init__(
        self, config: RelayOutput, on_state: StateListener, *, deadline_s: float = ACTION_DEADLINE_S
    ) -> None:
        super().__init__(config.id, on_state, deadline_s=deadline_s)
        self.config = config
        self.desired: dict[int, bool] = {}  # channel -> what it was last told
        self._decoder = StatusDecoder()
        self._reported: dict[int, bool] = {}
        self._ok_detail: str | None = None

    @property
    def kind(self) -> OutputKind:
        return "relay"

    def plan(self, command: AnyCommand) -> Planned[Switch]:
        if not isinstance(command, RelaySwitch):
            raise InvalidCommandError(_not_mine(self.id, command))
        channel, channels = command.channel, self.config.channels
        if channel > channels:
            raise InvalidCommandError(f"{self.id}: no channel {channel} (the board has {channels})")
        switch = Switch(channel, command.on)
        if command.duration_s is None:
            return Planned(switch, str(switch), frozenset({channel}))
        back = Switch(channel, not command.on)
        follow_up = FollowUp(channel, command.duration_s, Planned(back, f"{back} (timed)"))
        return Planned(
            switch, f"{switch} for {command.duration_s:g} s", frozenset({channel}), follow_up
        )

    def _fell_due(self, planned: Planned[Switch]) -> None:
        self.desired[planned.action.channel] = planned.action.on

    async def _open(self) -> SerialPort:
        self._decoder = StatusDecoder()  # half a status line from before a reopen is gone
        return await SerialPort.open(self.config.port, self.config.baudrate, self._on_bytes)

    def _on_bytes(self, data: bytes) -> None:
        self._decoder.receive_data(data)
        while (line := self._decoder.next_frame()) is not NEED_DATA:
            self._reported[line.channel] = line.on

    def _close(self, conn: SerialPort) -> None:
        conn.close()

    async def _watch(self, conn: SerialPort) -> None:
        await conn.pump()

    async def _hello(self, conn: SerialPort) -> None:
        reported = await self._read_back(conn) if self.config.answers_status else {}
        for channel, on in sorted(self.desired.items()):
            if reported.get(channel) != on:
                await conn.send(RelayCommand(channel, on).to_bytes())
        restored = sum(self.desired.values())
        how = "status read back" if self.config.answers_status else "switch-only"
        again = f", {restored} switched on again" if restored else ""
        self._ok_detail = f"{self.config.channels} channels, {how}{again}"
        self.set_state(DeviceState.OK, self._ok_detail)

    async def _check(self, conn: SerialPort) -> None:
        if not self.config.answers_status:
            return  # the port pump notices an unplug; there is nothing else to ask
        reported = await self._read_back(conn)
        wrong = [ch for ch, on in self.desired.items() if reported.get(ch) != on]
        if wrong:
            self.set_state(DeviceState.ERROR, f"channels {wrong} do not read as commanded")
        else:
            self.set_state(DeviceState.OK, self._ok_detail)

    async def _attempt(self, conn: SerialPort, action: Switch) -> None:
        await conn.send(RelayCommand(action.channel, action.on).to_bytes())
        self.desired[action.channel] = action.on
        if not self.config.answers_status:
            return
        reported = await self._read_back(conn)
        if reported.get(action.channel) != action.on:
            now = "on" if reported.get(action.channel) else "off"
            raise RetryableError(f"channel {action.channel} reads {now} after the switch")

    async def _read_back(self, conn: SerialPort) -> dict[int, bool]:
        self._reported = {}
        conn.expect()
        await conn.send(STATUS_QUERY)
        deadline = asyncio.get_running_loop().time() + STATUS_TIMEOUT_S
        while len(self._reported) < self.config.channels:
            if not await conn.arrival(deadline):
                got = len(self._reported)
                raise RetryableError(
                    f"status query: {got} of {self.config.channels} channels "
                    f"answered within {STATUS_TIMEOUT_S} s"
                )
        return dict(self._reported)


def _not_mine(output_id: str, command: AnyCommand) -> str:
    return f"{output_id}: {type(command).__name__} is not a relay command"
