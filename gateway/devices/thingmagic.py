"""The session for ThingMagic Mercury modules (M6e, M6e Nano, Micro) in continuous read.

Bring-up follows what SparkFun's library and Universal Reader Assistant send (PROTOCOLS.md 1.7,
1.8): stop any read left running by a previous run, ask the version, set region, Gen2, read power
and the antenna plan, switch the read filter off (every singulation is reported, so the presence
engine sees the real read rate), then start continuous reading. While streaming, a keep-alive
arrives once per search cycle, so a silence of several cycles means the link is dead even when the
port still looks open; bytes that make no frame for ``garbage_error_s`` (``GarbageWatch``) put
the reader in error until a valid frame comes.

Streaming is the hot path: each wakeup reads whatever the port has waiting, one call of the
batched scan (``drivers.thingmagic.batch``, a numba kernel) frames all of it and returns the tag
reads as columns, and the context takes them in one ``emit_reads``. Only the rare other frames
(keep-alives, warnings, acks) go through the per-frame parser. The bytes of a frame cut by the
read are kept and put in front of the next read.
"""

from __future__ import annotations

import asyncio
import math
from typing import Final, assert_never

from drivers.buffer import DecoderStats
from drivers.errors import DeviceError, FrameError, TransportError
from drivers.thingmagic import batch, commands
from drivers.thingmagic.decoder import ResponseDecoder
from drivers.thingmagic.frames import Request, Response
from drivers.thingmagic.records import (
    KeepAlive,
    ReaderWarning,
    ReadingStarted,
    ReadingStopped,
    StatsRecord,
    TagRead,
    parse_stream_message,
)
from drivers.thingmagic.status import describe
from drivers.thingmagic.version import TMR_SR_MODEL_M6E_NANO, VersionInfo
from drivers.transport import open_serial
from gateway.config import ThingMagicReader
from gateway.devices.base import DeviceContext, DeviceState
from gateway.devices.garbage import GarbageWatch
from gateway.devices.link import Link

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
# Bytes taken per wakeup while streaming: 64 KiB is ~1,700 reads, a third of a second of a
# reader at full speed on 115200 baud and far more than arrives between two loop turns.
STREAM_CHUNK: Final = 64 * 1024
# After each chunk the session pauses ``coalesce_ms`` (config) so that the next read takes
# everything that arrived meanwhile. A USB serial adapter hands over a packet every few
# milliseconds while a reader streams; waking for each costs more CPU than decoding it (bench:
# docs/benchmarks.md). The pause bounds the wakeups per reader, at the price of up to that much
# latency per read. A read that filled STREAM_CHUNK left bytes waiting: no pause then, or the
# pause would cap the rate.


def warm_up() -> None:
    """Compile the stream scan, or load it from numba's cache, before any reader streams."""
    batch.warm_up()


class ThingMagicSession:
    def __init__(self, config: ThingMagicReader) -> None:
        self.config = config
        self.version: VersionInfo | None = None
        self.malformed = 0
        self.stats = DecoderStats()  # of the streaming scan (bring-up frames: the Link's decoder)
        self._coalesce_s = config.coalesce_ms / 1000

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
        # one chunk at the switch, which the presence engine treats like missed reads.
        silence = MISSED_CYCLES * self.config.search_timeout_ms / 1000 + 1.0
        scanner = batch.Scanner()
        watch = GarbageWatch(ctx, self.stats, self.config.garbage_error_s)
        rest = b""
        while True:
            try:
                async with asyncio.timeout(silence):
                    data = await _read(link)
            except TimeoutError:
                message = f"no keep-alive for {silence:.1f} s: the reader stalled"
                raise DeviceError(message) from None
            buf = rest + data if rest else data
            found = scanner.scan(buf)
            rest = buf[found.consumed :]
            found.add_to(self.stats)
            ctx.emit_reads(found.epcs(buf), found.antenna, found.rssi)
            for raw in found.others(buf):
                self._handle(Response.from_checked_bytes(raw), ctx)
            watch.after_chunk()
            await asyncio.sleep(0 if len(data) == STREAM_CHUNK else self._coalesce_s)

    def _handle(self, frame: Response, ctx: DeviceContext) -> None:
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


async def _read(link: Link[Response]) -> bytes:
    try:
        data = await link.reader.read(STREAM_CHUNK)
    except (OSError, ConnectionError) as exc:
        raise TransportError(f"{link.port}: read failed: {exc}") from exc
    if not data:
        raise TransportError(f"{link.port}: the port was closed (device unplugged?)")
    return data
