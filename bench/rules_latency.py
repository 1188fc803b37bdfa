"""Serial bytes of the triggering read -> bytes of the display frame, measured outside the
daemon: paced FakeReaders as store load, marker customers entering, a rule that shows on a
display whose pty is served by a thread that ACKs and stamps each SHOW frame. No broker: the
outbox keeps every event, and the ok action.executed events (FIFO on one output) map each SHOW
to its marker. Usage: [SYNC=normal] python -m bench.rules_latency READS_PER_S SECONDS"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import tempfile
import threading
import time
import tty
from pathlib import Path

from bench.e2e import _stamps, _streaming, fake_readers, percentile, write_config
from bench.loadgen import FakeReader, record
from bench.proc import Measured, cpu_percent
from drivers.sentinel import NEED_DATA
from drivers.serial_display import Ack, CommandDecoder, Received, ShowText, encode_reply
from gateway.demo.broker import free_port
from gateway.outbox import Outbox

MARK_EVERY_S = 0.1
MARK_GAP_S = 0.05
RULES = """
[[outputs]]
id = "disp"
driver = "serial-display"
port = "{port}"
[[rules]]
id = "hello"
cooldown_s = 0
trigger = {{ event = "presence.enter", zones = ["entrance"], subject = "customer" }}
[[rules.actions]]
output = "disp"
do = "show"
text = "Hello {{zone}}"
min_interval_s = 0
"""


class StampingDisplay:
    def __init__(self, link: Path) -> None:
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)
        link.unlink(missing_ok=True)
        link.symlink_to(os.ttyname(self._slave))
        self.shows: list[float] = []
        self._closed = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        decoder = CommandDecoder()
        while not self._closed:
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            now = time.monotonic()
            decoder.receive_data(data)
            while (frame := decoder.next_frame()) is not NEED_DATA:
                if isinstance(frame, Received):
                    if isinstance(frame.command, ShowText):
                        self.shows.append(now)
                    os.write(self.master, encode_reply(Ack(frame.seq)).to_bytes())

    def close(self) -> None:
        self._closed = True
        for fd in (self.master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)


async def markers(reader: FakeReader, seconds: float) -> list[bytes]:
    frames, stop, n = [], time.monotonic() + seconds, 0
    while time.monotonic() < stop:
        frame = record(bytes.fromhex("C0FFEE") + n.to_bytes(9, "big"), 1, rssi=-45)
        reader.mark(frame)
        await asyncio.sleep(MARK_GAP_S)
        reader.mark(frame)
        frames.append(frame)
        n += 1
        await asyncio.sleep(MARK_EVERY_S - MARK_GAP_S)
    return frames


async def main(rate: float, seconds: float) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="rules-lat-"))
    display = StampingDisplay(tmp / "disp")
    with fake_readers(tmp, 2, rate / 2) as readers:
        url = f"mqtt://127.0.0.1:{free_port()}"
        config = write_config(tmp, [r.link for r in readers], url, RULES.format(port=tmp / "disp"))
        if os.environ.get("SYNC"):
            sync = f'[storage]\nsynchronous = "{os.environ["SYNC"]}"\n'
            config.write_text(config.read_text().replace("[storage]\n", sync))
        with Measured.daemon(config) as daemon:
            daemon.wait_ready()
            await _streaming(readers)
            await asyncio.sleep(2.0)
            a, w0 = daemon.sample(), sum(r.written for r in readers)
            frames = await markers(readers[0], seconds)
            b, w1 = daemon.sample(), sum(r.written for r in readers)
            await asyncio.sleep(1.5)
    display.close()
    stamps = _stamps(readers[0])
    rows = [json.loads(r.body) for r in Outbox.open(tmp / "outbox.db").pending(limit=10**7)]
    by_id = {e["id"]: e for e in rows}
    done = [e for e in rows if e["type"] == "action.executed" and e["ok"]]
    assert len(done) == len(display.shows), (len(done), len(display.shows))
    frame_of = {
        (bytes.fromhex("C0FFEE") + n.to_bytes(9, "big")).hex().upper(): f
        for n, f in enumerate(frames)
    }
    lat, internal = [], []
    for event, shown in zip(done, display.shows, strict=True):  # lengths asserted above
        subject = by_id[event["trigger"]]["subject"]["id"]
        if subject in frame_of:
            lat.append(1000 * (shown - stamps[frame_of[subject]]))
            internal.append(event["latency_ms"])
    print(
        f"rate {(w1 - w0) / (b.t - a.t):.0f} reads/s, cpu {cpu_percent(a, b):.0f}%, "
        f"markers {len(frames)}, measured {len(lat)}, p50 {percentile(lat, 50):.1f} ms, "
        f"p99 {percentile(lat, 99):.1f} ms, max {max(lat):.1f} ms; decision->ACK "
        f"p50 {percentile(internal, 50):.1f} p99 {percentile(internal, 99):.1f} ms"
    )


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1]), float(sys.argv[2])))
