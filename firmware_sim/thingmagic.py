"""A simulated ThingMagic M6e Nano on a SimPort: answers commands, streams what it "sees".

Two loops share the port, in one TaskGroup: ``_serve`` decodes host commands with the driver's
``RequestDecoder`` and answers them (settings through ``ModuleState``, reads here), ``_stream``
runs search cycles while a continuous read is on. Each cycle draws its reads from the traffic
model for the antennas in the plan, sends them as 0x22 tag records (``encode_stream_record``,
timestamps relative to the cycle start) in small ticks as their time comes, and closes with the
keep-alive ``FF 00 22 04 00 84 E0`` that the 2015 Nano firmware sends once per cycle.

Stop follows the logged sequence (docs/drivers/thingmagic.md 1.8): the reads still due are
flushed, one more keep-alive, then ``FF 01 2F 00 00 02 30 E6`` about 0.7 s after the stop command.

Time is the scenario's (``clock()`` = seconds into the scenario); the tick is real time. Faults
(``firmware_sim.faults.Faults``) apply to every frame and may be replaced while running; one-off
events are methods: ``stall``, ``hang_up``, ``send_boot_frame``, ``send_warning``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from drivers.thingmagic import commands as cmd
from drivers.thingmagic import status
from drivers.thingmagic.decoder import RequestDecoder
from drivers.thingmagic.frames import MAX_DATA_LEN, Request, Response
from drivers.thingmagic.records import (
    ReaderWarning,
    ReadingStarted,
    ReadingStopped,
    TagRead,
    encode_keepalive,
    encode_stream_record,
)
from firmware_sim.faults import Faults, FrameMangler
from firmware_sim.pty import SimPort, incoming_frames
from firmware_sim.scenario import Scenario, ScenarioClock
from firmware_sim.thingmagic_module import (
    NANO_MAX_POWER_CDBM,
    REGION_NONE,
    VERSION_REPLY,
    ModuleState,
)
from firmware_sim.thingmagic_reads import (
    ReadPlan,
    TagBuffer,
    parse_start_read,
    parse_timed_read,
)
from firmware_sim.traffic import Antenna, TrafficModel, generate_reads

HOP_DWELL_S: Final = 0.2  # time on one channel before hopping to the next table entry
OPCODE_BOOT: Final = 0x04


@dataclass(frozen=True, slots=True)
class SimTiming:
    stop_latency_s: float = 0.7  # stop command to stop ack, as logged
    tick_s: float = 0.02  # how often due reads are written out
    max_reads_per_s: float = 170.0  # Nano Design Guide: M=4 "up to 170 tags per second"


@dataclass(slots=True)
class SimStats:
    commands: int = 0
    unknown_opcodes: int = 0
    tag_records: int = 0
    keepalives: int = 0
    warnings: int = 0
    boots: int = 0
    hang_ups: int = 0


@dataclass(slots=True)
class _Cycle:
    end: float  # scenario time
    tags: list[TagRead] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    sent: int = 0


class ThingMagicSim:
    def __init__(
        self,
        port: SimPort,
        scenario: Scenario,
        antennas: Sequence[Antenna],
        *,
        model: TrafficModel | None = None,
        seed: int = 0,
        clock: Callable[[], float] | None = None,
        timing: SimTiming | None = None,
        faults: Faults | None = None,
    ) -> None:
        self.port = port
        self.scenario = scenario
        self.antennas = tuple(antennas)
        self.model = model or TrafficModel()
        self.clock = clock or ScenarioClock()
        self.timing = timing or SimTiming()
        self.faults = faults or Faults()
        self.state = ModuleState(ports=tuple(sorted({a.port for a in antennas})) or (1,))
        self.stats = SimStats()
        self._rng = random.Random(seed)
        self._np_rng = np.random.default_rng(seed)
        self.mangler = FrameMangler(random.Random(seed + 1))
        self._epcs = [bytes.fromhex(s.raw_id) for s in scenario.subjects]
        self._plan: ReadPlan | None = None
        self._stop_at: float | None = None  # scenario time the stop command came in
        self._streaming = asyncio.Event()
        self._buffer = TagBuffer()

    @property
    def reading(self) -> bool:
        return self._plan is not None

    async def run(self) -> None:
        """Serve until the port is closed (PortClosedError) or the task is cancelled."""
        async with asyncio.TaskGroup() as tg:
            streamer = tg.create_task(self._stream())
            await self._serve()
            streamer.cancel()

    # -- one-off faults ------------------------------------------------------------------------

    def stall(self, seconds: float) -> None:
        """Nothing leaves the module for ``seconds`` (reads pile up and arrive late)."""
        self.port.stall(seconds)

    async def hang_up(self, down_s: float = 0.5) -> None:
        """Unplug the reader for ``down_s``; it comes back freshly booted on a new pty."""
        self.stats.hang_ups += 1
        self.port.hang_up()
        self._power_cycle()
        try:
            await asyncio.sleep(down_s)
        finally:  # cancelled while unplugged: replug anyway, or the path would dangle for good
            self.port.reconnect()

    async def send_boot_frame(self) -> None:
        """An unexpected reboot: the module forgets its settings and stops reading.

        The bytes of the real power-on message are UNCONFIRMED (docs/drivers/thingmagic.md 7); this
        sends opcode 0x04 carrying the VERSION data, which is what mercuryapi expects it to hold.
        """
        self.stats.boots += 1
        self._power_cycle()
        await self._send([Response(OPCODE_BOOT, status.SUCCESS, VERSION_REPLY.data)])

    async def send_warning(self, code: int = status.HIGH_RETURN_LOSS) -> None:
        self.stats.warnings += 1
        await self._send([ReaderWarning(code).to_response()])

    def _power_cycle(self) -> None:
        self.state.reset()
        self._plan = None
        self._stop_at = None
        self._streaming.clear()
        self._buffer.clear()

    # -- output ----------------------------------------------------------------------------------

    async def _send(self, frames: Sequence[Response]) -> None:
        await self.mangler.send(self.port, (f.to_bytes() for f in frames), self.faults)

    # -- commands --------------------------------------------------------------------------------

    async def _serve(self) -> None:
        async for request in incoming_frames(self.port, RequestDecoder):
            self.stats.commands += 1
            await self._handle(request)

    async def _handle(self, request: Request) -> None:
        match request.opcode:
            case cmd.OPCODE_MULTI_PROTOCOL_TAG_OP:
                reply = self._start_or_stop(request)
            case cmd.OPCODE_READ_TAG_ID_MULTIPLE:
                reply = await self._timed_read(request)
            case cmd.OPCODE_GET_TAG_ID_BUFFER:
                reply = self._buffer.reply(request, MAX_DATA_LEN)
            case cmd.OPCODE_CLEAR_TAG_ID_BUFFER:
                self._buffer.clear()
                reply = Response(request.opcode, status.SUCCESS)
            case cmd.OPCODE_SET_TAG_PROTOCOL:
                self._buffer.clear()  # "reset by 0x2A or by a protocol change (0x93)"
                reply = self.state.answer(request)
            case _:
                reply = self.state.answer(request)
        if reply is None:
            return
        if reply.status == status.INVALID_OPCODE:
            self.stats.unknown_opcodes += 1
        await self._send([reply])

    def _start_or_stop(self, request: Request) -> Response | None:
        option = request.data[2:3]
        if option == bytes((cmd.TM_OPTION_STOP_READING,)):
            if self._plan is None:
                return ReadingStopped().to_response()  # nothing running: ack at once
            if self._stop_at is None:
                self._stop_at = self.clock()
            return None  # the streamer acks once it has flushed
        plan = parse_start_read(request.data)
        if plan is None:
            return Response(request.opcode, status.MSG_INVALID_PARAMETER_VALUE)
        if self.state.region == REGION_NONE:
            return Response(request.opcode, status.INVALID_REGION)  # chosen by name; no capture
        self._plan = plan
        self._stop_at = None
        self._streaming.set()
        return ReadingStarted().to_response()

    async def _timed_read(self, request: Request) -> Response:
        timed = parse_timed_read(request.data)
        if timed is None or self._plan is not None:
            return Response(request.opcode, status.MSG_INVALID_PARAMETER_VALUE)
        t0 = self.clock()
        await asyncio.sleep(timed.timeout_ms / 1000)
        cycle = self._draw(t0, t0 + timed.timeout_ms / 1000)
        if not cycle.tags:
            return Response(request.opcode, status.NO_TAGS_FOUND)
        self._buffer.add(cycle.tags)
        return Response(request.opcode, status.SUCCESS, timed.reply_data(len(self._buffer)))

    # -- streaming -------------------------------------------------------------------------------

    async def _stream(self) -> None:
        while True:
            await self._streaming.wait()
            plan = self._plan
            if plan is None:
                self._streaming.clear()
                continue
            await self._run_cycles(plan)

    async def _run_cycles(self, plan: ReadPlan) -> None:
        now = self.clock()
        cycle = self._draw(now, now + plan.cycle_s)
        while self._plan is plan:
            now = self.clock()
            if self._stop_at is not None:
                await self._finish(plan, cycle)
                return
            await self._send_due(plan, cycle, now)
            if now >= cycle.end:
                await self._end_cycle()
                start = cycle.end + plan.off_s  # duty cycle: the RF rests between cycles
                cycle = self._draw(start, start + plan.cycle_s)
            await asyncio.sleep(self.timing.tick_s)

    async def _send_due(self, plan: ReadPlan, cycle: _Cycle, now: float) -> None:
        due = cycle.sent
        while due < len(cycle.times) and cycle.times[due] <= now:
            due += 1
        if due == cycle.sent:
            return
        frames = [
            encode_stream_record(
                tag, metadata_flags=plan.metadata_flags, search_flags=plan.search_flags
            )
            for tag in cycle.tags[cycle.sent : due]
        ]
        cycle.sent = due
        self.stats.tag_records += len(frames)
        await self._send(frames)

    async def _end_cycle(self) -> None:
        # 0x0505 takes the keep-alive's slot, as SparkFun's parser expects it there.
        if self.faults.return_loss_rate and self._rng.random() < self.faults.return_loss_rate:
            await self.send_warning(status.HIGH_RETURN_LOSS)
            return
        self.stats.keepalives += 1
        await self._send([encode_keepalive()])

    async def _finish(self, plan: ReadPlan, cycle: _Cycle) -> None:
        stop_at = self._stop_at if self._stop_at is not None else self.clock()
        await self._send_due(plan, cycle, stop_at)
        self.stats.keepalives += 1
        await self._send([encode_keepalive()])
        await asyncio.sleep(max(0.0, stop_at + self.timing.stop_latency_s - self.clock()))
        if self._plan is plan:  # a reboot meanwhile cancels the ack
            self._plan, self._stop_at = None, None
            self._streaming.clear()
            await self._send([ReadingStopped().to_response()])

    def _draw(self, t0: float, t1: float) -> _Cycle:
        """The reads of one search cycle, as TagReads with cycle-relative timestamps."""
        ports = self.state.active_ports
        antennas = [a for a in self.antennas if a.port in ports]
        reads = generate_reads(self.scenario, antennas, self.model, t0, t1, self._np_rng)
        keep = self._throttle(len(reads), t1 - t0)
        power_db = (self.state.read_power_cdbm - NANO_MAX_POWER_CDBM) / 100
        hops = self.state.hop_table_khz
        cycle = _Cycle(t1)
        for i in keep:
            t = float(reads.t[i])
            port = antennas[int(reads.antenna[i])].port
            rssi = int(np.clip(round(float(reads.rssi[i]) + power_db), -128, 127))
            cycle.times.append(t)
            cycle.tags.append(
                TagRead.for_epc(
                    self._epcs[int(reads.subject[i])], rssi_dbm=rssi, tx_port=port, rx_port=port,
                    frequency_khz=hops[int(t / HOP_DWELL_S) % len(hops)],
                    timestamp_ms=int((t - t0) * 1000), phase=0, protocol=cmd.TAG_PROTOCOL_GEN2,
                    gpio=0,
                )
            )  # fmt: skip
        return cycle

    def _throttle(self, n: int, span_s: float) -> list[int]:
        """Indices to keep: a module singulates at most ``max_reads_per_s`` tags a second."""
        cap = int(self.timing.max_reads_per_s * span_s)
        if n <= cap:
            return list(range(n))
        return sorted(self._rng.sample(range(n), cap))
