"""A simulated Modbus RTU weight transmitter on a pty, weighing one or more ``Shelf``s.

Requests are decoded and replies framed with pymodbus (through ``drivers.modbus_scale.rtu``), so
the bytes on the wire are the ones a real slave would send; pymodbus's own server opens a serial
port by path and would sit on the daemon's side of the pty, which is why the slave loop is here.

Each channel is a (register map, shelf) pair on the same device id, as on the multi-channel
modules. A read returns the registers the maps describe, the weight computed at the moment of
the request (so wobble and noise are live). Writing a map's tare code to its command register
tares that channel; its zero code re-zeroes it. Addresses nobody maps get Modbus exception 2, a
request for another device id gets silence, as on an RS485 bus.

``scale_device`` is the builder that adds scales to ``python -m firmware_sim`` and the demo
(``firmware_sim.station.DEVICE_BUILDERS``).

Fault knobs: ``silent`` (no replies at all, a disconnected transmitter) and ``exception_next``
(answer the next requests with these exception codes).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from pymodbus.pdu import ExceptionResponse, ModbusPDU
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersRequest,
    ReadHoldingRegistersResponse,
    ReadInputRegistersRequest,
    ReadInputRegistersResponse,
    WriteMultipleRegistersRequest,
    WriteMultipleRegistersResponse,
    WriteSingleRegisterRequest,
    WriteSingleRegisterResponse,
)

from drivers.modbus_scale import (
    RegisterMap,
    RtuDecoder,
    encode_adu,
    generic_channel,
    registers_from_grams,
)
from drivers.modbus_scale.scale import (
    ILLEGAL_DATA_ADDRESS,
    ILLEGAL_DATA_VALUE,
    ILLEGAL_FUNCTION,
)
from firmware_sim.pty import SimPort, incoming_frames
from firmware_sim.shelf import Shelf, ShelfAction, play, shelf_actions, stock

if TYPE_CHECKING:
    from firmware_sim.station import RunContext, SimDevice


@dataclass(slots=True)
class Channel:
    regmap: RegisterMap
    shelf: Shelf
    tare_g: float = 0.0
    commands: list[int] = field(default_factory=list)  # codes written, in order


@dataclass(slots=True)
class ScaleFaults:
    silent: bool = False
    exception_next: list[int] = field(default_factory=list)


class ModbusScaleSim:
    def __init__(self, port: SimPort, channels: Sequence[Channel], *, device_id: int = 1) -> None:
        self.port = port
        self.channels = list(channels)
        self.device_id = device_id
        self.decoder = RtuDecoder(is_server=True)
        self.faults = ScaleFaults()
        self.requests = 0

    async def run(self) -> None:
        async for request in incoming_frames(self.port, lambda: self.decoder):
            await self._serve(request)

    async def _serve(self, request: ModbusPDU) -> None:
        if request.dev_id != self.device_id or self.faults.silent:
            return
        self.requests += 1
        response = self._respond(request)
        response.dev_id = self.device_id
        await self.port.write(encode_adu(response))

    def _respond(self, request: ModbusPDU) -> ModbusPDU:
        if self.faults.exception_next:
            return ExceptionResponse(request.function_code, self.faults.exception_next.pop(0))
        if isinstance(request, ReadHoldingRegistersRequest):  # input requests are a subclass
            return self._respond_read(request)
        if isinstance(request, WriteMultipleRegistersRequest | WriteSingleRegisterRequest):
            return self._respond_write(request)
        return ExceptionResponse(request.function_code, ILLEGAL_FUNCTION)

    def _respond_read(self, request: ReadHoldingRegistersRequest) -> ModbusPDU:
        values = self._read(request.address, request.count)
        if values is None:
            return ExceptionResponse(request.function_code, ILLEGAL_DATA_ADDRESS)
        if isinstance(request, ReadInputRegistersRequest):
            return ReadInputRegistersResponse(registers=values)
        return ReadHoldingRegistersResponse(registers=values)

    def _respond_write(
        self, request: WriteMultipleRegistersRequest | WriteSingleRegisterRequest
    ) -> ModbusPDU:
        code = self._write(request.address, list(request.registers))
        if code is not None:
            return ExceptionResponse(request.function_code, code)
        if isinstance(request, WriteSingleRegisterRequest):
            return WriteSingleRegisterResponse(address=request.address, registers=request.registers)
        return WriteMultipleRegistersResponse(address=request.address, count=request.count)

    def _image(self) -> dict[int, int]:
        """Every mapped register and its value right now."""
        now = asyncio.get_running_loop().time()
        image: dict[int, int] = {}
        for ch in self.channels:
            m = ch.regmap
            grams = ch.shelf.measure(now) - ch.tare_g
            for i, value in enumerate(registers_from_grams(grams, m, m.decimals)):
                image[m.weight_address + i] = value
            if m.decimals_address is not None:
                image[m.decimals_address] = m.decimals
            if m.command_address is not None:
                image[m.command_address] = 0
        return image

    def _read(self, address: int, count: int) -> list[int] | None:
        image = self._image()
        wanted = range(address, address + count)
        if any(a not in image for a in wanted):
            return None
        return [image[a] for a in wanted]

    def _write(self, address: int, values: list[int]) -> int | None:
        targets = [ch for ch in self.channels if ch.regmap.command_address == address]
        if not targets or len(values) != 1:
            return ILLEGAL_DATA_ADDRESS
        for ch in targets:
            if values[0] not in (ch.regmap.tare_command, ch.regmap.zero_command):
                return ILLEGAL_DATA_VALUE
            ch.commands.append(values[0])
            now = asyncio.get_running_loop().time()
            # Tare and zero both take the present load as the new zero; a real instrument
            # keeps them apart (net vs gross), which this single weight register cannot show.
            ch.tare_g = ch.shelf.measure(now)
        return None


# -- a device builder for python -m firmware_sim and silentgate demo ------------------------

SCALE_NOISE_G: Final = 0.5


def scale_device(args: argparse.Namespace, ctx: RunContext) -> list[SimDevice]:
    """One scale under each shelf zone (every zone but the first, the entrance, as in
    ``Scenario.generate``), carrying that zone's items: the scenario's pickups and putbacks
    change its load, customers stopping at the shelf make it wobble.

    Reads ``args.scale_zones`` (comma-separated) and ``args.scale_noise_g`` where present."""
    # Imported here: the station imports its builders, so a module-level import would be a cycle.
    from firmware_sim.station import SimDevice  # noqa: PLC0415

    zones = _scale_zones(args, ctx.scenario.zones)
    noise = float(getattr(args, "scale_noise_g", None) or SCALE_NOISE_G)
    devices = []
    for n, zone in enumerate(zones):
        name = f"scale-{zone}"
        shelf = Shelf(noise_g=noise, seed=ctx.seed * 1000 + n)
        stock(shelf, ctx.scenario, zone)
        port = SimPort(ctx.link_dir, name, seed=ctx.seed + n)
        port.open()
        sim = ModbusScaleSim(port, [Channel(generic_channel(1), shelf)])
        run = functools.partial(_run, sim, shelf_actions(ctx.scenario, zone), ctx.clock)
        toml = (
            f'[[sensors]]\nid = "{name}"\ndriver = "modbus-scale"\nport = "{port.path}"\n'
            f'zone = "{zone}"\nregister_map = "generic"\n'
        )
        devices.append(SimDevice(name, port, run, toml))
    return devices


def _scale_zones(args: argparse.Namespace, zones: Sequence[str]) -> list[str]:
    wanted = getattr(args, "scale_zones", None)
    if wanted:
        return [z.strip() for z in str(wanted).split(",") if z.strip()]
    return list(zones[1:] or zones)


async def _run(sim: ModbusScaleSim, actions: list[ShelfAction], clock: Callable[[], float]) -> None:
    """The slave loop and the hands on the shelf; ends when the port is closed."""
    async with asyncio.TaskGroup() as tg:
        hands = tg.create_task(play(sim.channels[0].shelf, actions, clock))
        await sim.run()
        hands.cancel()
