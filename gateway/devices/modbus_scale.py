"""The session for Modbus RTU shelf scales: poll the weight ``poll_hz`` times a second while the
load moves, ``idle_poll_hz`` while it is still (``gateway.devices.pace``).

It talks through ``drivers.transport.open_serial`` and the driver's RTU codec (pymodbus's
framer and CRC behind ``RtuDecoder``), like the other sessions, rather than through pymodbus's
``AsyncModbusSerialClient``, because:

* the client reconnects by itself and retries inside each request, which would hide a dead port
  from the supervisor (no ``down`` state, no backoff of ours) and fight its restarts;
* the decoder hunts frame by frame and drops bytes that are no reply from our unit: the echo of
  our own request from a USB-RS485 adapter without echo suppression, a late reply to a request
  that timed out, line noise on a long bus. The client's framer drops its whole buffer instead;
* one path for every URL ``open_serial`` takes (a pty, /dev/ttyUSB0, socket://, rfc2217://).

A lost poll (no reply within ``timeout_s``, or a reply that is not one) is normal on RS485
now and then: it is counted and the next poll goes out after a short quiet time, so bytes of a
late reply cannot be taken for the next one. Only ``max_lost_polls`` in a row raise, for the
supervisor to reopen the port with backoff (state ``down``). A Modbus exception reply means the
instrument is there but unhappy (overload, a load cell fault): state ``error`` until a good
reading. Each reading goes to the pipeline as (grams, monotonic time of the reply).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Final

from pymodbus.pdu import ModbusPDU

from drivers.errors import DeviceError, FrameError
from drivers.modbus_scale import RtuDecoder, Scale, encode_adu
from drivers.transport import open_serial
from gateway.clock import Clock
from gateway.config import ModbusScaleSensor
from gateway.devices.base import DeviceContext
from gateway.devices.link import Link
from gateway.devices.pace import PollPace
from gateway.health import DeviceState

QUIET_S: Final = 0.05  # after a lost poll: longer than a reply's worth of bytes at 9600 baud

WeightSink = Callable[[float, float], None]  # (grams, monotonic t)


class ModbusScaleSession:
    def __init__(self, config: ModbusScaleSensor, sink: WeightSink, clock: Clock) -> None:
        self.config = config
        self.scale = Scale(config.regmap(), config.unit, use_fc06=config.use_fc06)
        self._sink = sink
        self._clock = clock
        self.lost_in_a_row = 0
        self.lost = 0
        self.readings = 0
        self.decoder = RtuDecoder(is_server=False)

    def frame_counters(self) -> dict[str, int]:
        return self.decoder.stats.rejections()

    async def run(self, ctx: DeviceContext) -> None:
        c = self.config
        reader, writer = await open_serial(
            c.port, baudrate=c.baudrate, parity=c.parity, stopbits=c.stopbits
        )
        self.decoder.drop_partial()  # a half frame from before a reopen is gone
        link: Link[ModbusPDU] = Link(reader, writer, self.decoder, c.port)
        self.lost_in_a_row = 0
        try:
            await self._bring_up(link, ctx)
            await self._poll(link, ctx)
        finally:
            link.close()

    async def _bring_up(self, link: Link[ModbusPDU], ctx: DeviceContext) -> None:
        scale = self.scale
        request = scale.decimals_request()
        if request is not None:
            decimals = scale.parse_decimals(await self._command(link, request))
            ctx.log.info("%s: %d decimals", scale.regmap.name, decimals)
        if self.config.tare_on_start:
            scale.check_write(await self._command(link, scale.tare_request()))
            ctx.log.info("tared")
        response = await self._command(link, scale.read_request())
        reading = scale.parse_reading(response, self._clock.now())
        self._sink(reading.grams, reading.t)
        ctx.set_state(DeviceState.OK, f"{scale.regmap.name}, {reading.grams:g} g")

    async def _command(self, link: Link[ModbusPDU], request: ModbusPDU) -> ModbusPDU:
        try:
            return await self._exchange(link, request)
        except TimeoutError:
            raise DeviceError(
                f"no answer from unit {self.scale.device_id} within {self.config.timeout_s} s "
                f"(wrong port, baud rate, parity or unit?)"
            ) from None

    async def _exchange(self, link: Link[ModbusPDU], request: ModbusPDU) -> ModbusPDU:
        await link.send(encode_adu(request))
        unit = self.scale.device_id
        return await link.wait_for(lambda pdu: pdu.dev_id == unit, self.config.timeout_s)

    async def _poll(self, link: Link[ModbusPDU], ctx: DeviceContext) -> None:
        c = self.config
        pace = PollPace(c.poll_hz, c.idle_poll_hz, c.stable_g, c.settle_s)
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            grams = await self._poll_once(link, ctx)
            # A fixed schedule, not a fixed pause: the poll rate stays what the pace asks
            # whatever the round trip takes. Behind schedule (a slow bus), skip ahead rather
            # than burst. Polls no faster than the pipeline's tick wake on its grid, in the
            # wakeups of the tick and of the other scales.
            period = pace.after(due, grams)
            due = max(due + period, loop.time())
            if period >= ctx.tick.tick_s:
                due = ctx.tick.at_or_after(due)
            await asyncio.sleep(due - loop.time())

    async def _poll_once(self, link: Link[ModbusPDU], ctx: DeviceContext) -> float | None:
        """A reading's grams, or None."""
        try:
            response = await self._exchange(link, self.scale.read_request())
            reading = self.scale.parse_reading(response, self._clock.now())
        except DeviceError as exc:
            self.lost_in_a_row = 0
            ctx.set_state(DeviceState.ERROR, str(exc))
            return None
        except (TimeoutError, FrameError) as exc:
            await self._lost(link, exc)
            return None
        self.lost_in_a_row = 0
        self.readings += 1
        self._sink(reading.grams, reading.t)
        if ctx.state != DeviceState.OK:
            ctx.set_state(DeviceState.OK, "weighing")
        return reading.grams

    async def _lost(self, link: Link[ModbusPDU], exc: Exception) -> None:
        self.lost += 1
        self.lost_in_a_row += 1
        limit = self.config.max_lost_polls
        if self.lost_in_a_row >= limit:
            reason = str(exc) or "no reply"
            raise DeviceError(f"{limit} polls in a row lost (last: {reason})") from None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(QUIET_S):
                while True:
                    await link.receive()
        self.decoder.drop_partial()
