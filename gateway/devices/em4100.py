"""The session for EM4100 card readers (RDM6300 / RDM630, ID-12LA / ID-20LA).

The reader has nothing to bring up: it only transmits, so the session opens the port, reports
it OK, and turns every frame into a read of a customer in the reader's zone. It sends the
repeats too, since the presence stage needs them to know the card is still there and dedups
them itself (docs/drivers/em4100.md). A silent reader is normal (no card near), so the only
failure this session can see is the port going away, which ``Link`` raises as a TransportError,
and bytes that never make a frame (``GarbageWatch``: state error until a valid frame).
"""

from __future__ import annotations

from drivers.buffer import DecoderStats
from drivers.em4100 import Em4100Decoder, Em4100Frame
from drivers.transport import open_serial
from gateway.config import Em4100Reader
from gateway.devices.base import DeviceContext
from gateway.devices.garbage import GarbageWatch
from gateway.devices.link import Link
from gateway.health import DeviceState
from gateway.reads.batch import SubjectKind

ANTENNA = 0  # single-antenna readers: the config maps antenna 0 to the reader's zone


class Em4100Session:
    def __init__(self, config: Em4100Reader) -> None:
        self.config = config
        self.decoder = Em4100Decoder()

    @property
    def stats(self) -> DecoderStats:
        return self.decoder.stats

    def frame_counters(self) -> dict[str, int]:
        return self.decoder.stats.rejections()

    async def run(self, ctx: DeviceContext) -> None:
        reader, writer = await open_serial(self.config.port, baudrate=self.config.baudrate)
        self.decoder.drop_partial()  # a half frame from before a reopen is gone
        link: Link[Em4100Frame] = Link(reader, writer, self.decoder, self.config.port)
        watch = GarbageWatch(ctx, self.decoder.stats, self.config.garbage_error_s)
        try:
            ctx.set_state(DeviceState.OK, "listening")
            while True:
                for frame in await link.receive():
                    ctx.emit_read(frame.raw_id, ANTENNA, kind=SubjectKind.CUSTOMER)
                watch.after_chunk()
        finally:
            link.close()
