"""The session for ThingMagic Mercury modules (M6e, M6e Nano, Micro) in continuous read.

Bring-up follows what SparkFun's library and Universal Reader Assistant send
(docs/drivers/thingmagic.md 1.7, 1.8): stop any read left running by a previous run, ask the
version, set region, Gen2, read power and the antenna plan, switch the read filter off (every
singulation is reported, so the presence engine sees the real read rate), then start continuous
reading. While streaming, a keep-alive arrives once per search cycle, so a silence of several cycles
means the link is dead even when the port still looks open; bytes that make no frame for
``garbage_error_s`` (``GarbageWatch``) put the reader in error until a valid frame comes.

Streaming is the hot path. The port leaves the asyncio transport and joins the pipeline's tick
(``gateway.devices.tick``): everything it has waiting is read once per tick, and one kernel call
(the context's ``emit_stream``) frames all of it with the batched scan
(``drivers.thingmagic.batch``) and takes its tag reads into the pipeline's columns (EPC ->
subject, antenna -> zone, each read's time spread over the span in which its bytes arrived).
Only the rare other frames (keep-alives, warnings, acks) go through the per-frame parser. The
bytes of a frame cut by the read are kept and put in front of the next read. The session's own
task only watches for the end: a failure, or no keep-alive.
"""

from __future__ import annotations

import logging
import math
from typing import Final, assert_never

import numpy as np

from drivers.buffer import DecoderStats
from drivers.errors import DeviceError, FrameError
from drivers.thingmagic import batch, commands
from drivers.thingmagic.batch import SOF_BYTES
from drivers.thingmagic.decoder import ResponseDecoder
from drivers.thingmagic.frames import Request, Response
from drivers.thingmagic.records import (
    KeepAlive,
    ReaderWarning,
    ReadingStarted,
    ReadingStopped,
    StatsRecord,
    TagRead,
    encode_keepalive,
    encode_stream_record,
    parse_stream_message,
)
from drivers.thingmagic.status import describe
from drivers.thingmagic.version import TMR_SR_MODEL_M6E_NANO, VersionInfo
from drivers.transport import buffered, give_back_reading, open_serial, take_reading
from gateway.clock import SystemClock
from gateway.config import ThingMagicReader
from gateway.devices.base import DeviceContext
from gateway.devices.garbage import GarbageWatch
from gateway.devices.link import Link
from gateway.health import DeviceState
from gateway.reads.batch import ReadCollector, Subjects

COMMAND_TIMEOUT_S: Final = 2.0  # SparkFun's COMMAND_TIME_OUT
STOP_TIMEOUT_S: Final = 2.0  # "Give 1000 to 2000ms for the module to stop reading"
MISSED_CYCLES: Final = 3  # keep-alive silences tolerated before the link counts as dead
KNOWN_MODELS: Final = {0x00: "M5e", 0x18: "M6e", 0x19: "M6e-I", 0x20: "Micro", 0x30: "M6e Nano"}
REGIONS: Final = {
    "NA": commands.REGION_NA, "EU": commands.REGION_EU, "IN": commands.REGION_IN,
    "JP": commands.REGION_JP, "PRC": commands.REGION_PRC, "EU3": commands.REGION_EU3,
    "KR2": commands.REGION_KR2, "AU": commands.REGION_AU, "NZ": commands.REGION_NZ,
    "NA2": commands.REGION_NA2, "NA3": commands.REGION_NA3, "OPEN": commands.REGION_OPEN,
}  # fmt: skip
NANO_MAX_POWER_CDBM: Final = 2700

log = logging.getLogger(__name__)


def warm_up() -> None:
    """Compile the stream's kernels (or load them) before any reader streams: a tag record and
    a keep-alive through the scan and ``emit_reads`` (the ingest, a new EPC into the reader's
    table), then through ``emit_stream`` (the two in one call, as a streaming port runs
    them), then the release of the subject (the table's rebuild)."""
    subjects = Subjects()
    ctx = DeviceContext(
        name="warm-up", index=0, zones={1: 0}, customer_prefixes=(), subjects=subjects,
        collector=ReadCollector(), clock=SystemClock(), wake=lambda: None,
        on_state=lambda *_: None,
    )  # fmt: skip
    read = TagRead.for_epc(bytes(12), rssi_dbm=-60, tx_port=1, rx_port=1)
    flags = commands.DEFAULT_METADATA_FLAGS
    buf = encode_stream_record(read, metadata_flags=flags).to_bytes()
    buf += encode_keepalive().to_bytes() + SOF_BYTES
    found = batch.Scanner().scan(buf)
    ctx.emit_reads(buf, found.epc_off, found.epc_len, found.antenna, found.rssi, 0.01)
    counters = np.zeros(batch.N_COUNTERS, np.int64)
    ctx.emit_stream(buf, batch.Scanner(), counters, 0.01)  # what a streaming port runs
    subjects.release([0])


class ThingMagicSession:
    def __init__(self, config: ThingMagicReader) -> None:
        self.config = config
        self.version: VersionInfo | None = None
        self.malformed = 0
        self.stats = DecoderStats()  # of the streaming scan (bring-up frames: the Link's decoder)
        if "coalesce_ms" in config.model_fields_set:
            log.warning(
                "%s: coalesce_ms is no longer used: streaming readers are read once per "
                "presence.tick_ms",
                config.id,
            )

    def frame_counters(self) -> dict[str, int]:
        return self.stats.rejections()

    async def run(self, ctx: DeviceContext) -> None:
        reader, writer = await open_serial(self.config.port, baudrate=self.config.baudrate)
        link: Link[Response] = Link(reader, writer, ResponseDecoder(), self.config.port)
        streaming = False
        try:
            await self._bring_up(link, ctx)
            streaming = True
            await self._stream(link, ctx)
        finally:
            if streaming:
                await self._try_stop(link)
            link.close()

    async def _bring_up(self, link: Link[Response], ctx: DeviceContext) -> None:
        await self._try_stop(link)
        self.version = VersionInfo.from_response(await self._command(link, commands.get_version()))
        model = KNOWN_MODELS.get(self.version.model)
        if model is None:
            ctx.log.warning("unknown module model 0x%02X; trying anyway", self.version.model)
        version = self.version
        ctx.log.info("%s firmware %s (%s)", model, version.firmware, version.firmware_date)
        power = round(self.config.read_power_dbm * 100)
        if self.version.model == TMR_SR_MODEL_M6E_NANO:
            power = min(power, NANO_MAX_POWER_CDBM)
        ports = sorted(self.config.antennas)
        for request in (
            commands.set_region(REGIONS[self.config.region]),
            commands.set_tag_protocol(commands.TAG_PROTOCOL_GEN2),
            commands.set_read_tx_power(power),
            commands.set_antenna_plan([(p, p) for p in ports]),
            commands.set_reader_config(commands.CONFIG_ENABLE_READ_FILTER, 0),
        ):
            await self._command(link, request)
        start = commands.start_continuous_read(search_timeout_ms=self.config.search_timeout_ms)
        await self._command(link, start)
        ctx.set_state(DeviceState.OK, f"{model or 'module'} {self.version.firmware}, reading")

    async def _command(self, link: Link[Response], request: Request) -> Response:
        await link.send(request.to_bytes())
        try:
            response = await link.wait_for(
                lambda r: r.opcode in (request.opcode, commands.OPCODE_BOOT_FIRMWARE),
                COMMAND_TIMEOUT_S,
            )
        except TimeoutError:
            raise DeviceError(
                f"no answer to opcode 0x{request.opcode:02X} within {COMMAND_TIMEOUT_S} s "
                f"(wrong port or baud rate?)"
            ) from None
        return commands.check_response(response, request.opcode)

    async def _stream(self, link: Link[Response], ctx: DeviceContext) -> None:
        # Frames already decoded with the start's answer are not replayed: at most the reads of
        # one chunk at the switch, which the presence engine treats like missed reads. Bytes the
        # transport had buffered beyond them are.
        silence = MISSED_CYCLES * self.config.search_timeout_ms / 1000 + 1.0
        stream = _Stream(self, ctx)
        fd = take_reading(link.writer)
        try:
            with ctx.tick.attach(fd, self.config.port, stream.consume) as port:
                port.feed(await buffered(link.reader))
                try:
                    await port.watch(silence)
                except TimeoutError:
                    message = f"no keep-alive for {silence:.1f} s: the reader stalled"
                    raise DeviceError(message) from None
        finally:
            give_back_reading(link.writer)

    def handle(self, frame: Response, ctx: DeviceContext) -> None:
        """A frame of the stream other than a tag record the scan took."""
        try:
            message = parse_stream_message(frame)
        except FrameError as exc:
            self.malformed += 1
            ctx.log.debug("malformed record: %s", exc)
            return
        match message:
            case TagRead():  # only a record the scan left to the parser, which parses it
                rssi = math.nan if message.rssi_dbm is None else float(message.rssi_dbm)
                ctx.emit_read(message.epc.hex().upper(), message.antenna, rssi)
            case KeepAlive() | StatsRecord() | ReadingStarted():
                if ctx.state != DeviceState.OK:
                    ctx.set_state(DeviceState.OK, "reading")
            case ReaderWarning():
                ctx.set_state(DeviceState.ERROR, describe(message.status))
            case ReadingStopped():
                raise DeviceError("the reader stopped reading on its own")
            case _:
                assert_never(message)

    async def _try_stop(self, link: Link[Response]) -> None:
        """Stop continuous reading if it runs; silence or an error answer is fine here."""
        try:
            await link.send(commands.stop_continuous_read().to_bytes())
            await link.wait_for(
                lambda r: r.opcode == commands.OPCODE_MULTI_PROTOCOL_TAG_OP, STOP_TIMEOUT_S
            )
        except (TimeoutError, DeviceError, OSError):
            pass


class _Stream:
    """The consumer of a streaming port: bytes in, reads to the context, other frames to the
    session. Keeps the bytes of a frame cut by the last read."""

    def __init__(self, session: ThingMagicSession, ctx: DeviceContext) -> None:
        self._session = session
        self._ctx = ctx
        self._scanner = batch.Scanner()
        self._rest = b""
        self._watch = GarbageWatch(ctx, session.stats, session.config.garbage_error_s)

    def consume(self, data: bytes, span_s: float) -> bool:
        buf = self._rest + data if self._rest else data
        counters = np.zeros(batch.N_COUNTERS, np.int64)
        consumed, reads, others = self._ctx.emit_stream(buf, self._scanner, counters, span_s)
        self._rest = buf[consumed:]
        batch.add_counters(counters, self._session.stats)
        if others:
            for raw in self._scanner.others(buf, others):
                self._session.handle(Response.from_checked_bytes(raw), self._ctx)
        self._watch.after_chunk()
        return reads > 0
