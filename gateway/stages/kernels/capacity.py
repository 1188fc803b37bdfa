"""How many reads a second the kernels sustain on this machine, as they run in this process.

``silentgate doctor`` states it beside how the kernels run (compiled, jit or python): on the
plain-Python twins a store's readers can outrun the daemon, and the figure says by how much.
It covers the per-read work of the kernels, framing a ThingMagic stream (``Scanner.scan``) and
the presence kernel (``PresenceStage.feed``), on a fixed synthetic stream: 40 tags on 4
antennas, 200 reads per batch as a pipeline run under load takes them. The Python around the
kernels (sessions, pipeline, events) costs per chunk and per run, not per read, and is not in
it: ``bench/startup.py`` measures the whole daemon on the same footing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Final

import numpy as np

from drivers.thingmagic import commands
from drivers.thingmagic.batch import Scanner
from drivers.thingmagic.records import TagRead, encode_stream_record
from gateway.reads.batch import ReadBatch
from gateway.stages.presence import PresenceStage, ZoneParams

TAGS: Final = 40
ANTENNAS: Final = 4
BATCH: Final = 200
READ_GAP_S: Final = 0.005  # 200 reads/s, a reader's steady rate


@dataclass(frozen=True, slots=True)
class Capacity:
    reads_per_s: float
    reads: int
    seconds: float


def stream(reads: int = BATCH) -> bytes:
    """``reads`` 0x22 tag records cycling over the tags, each tag on one antenna."""
    records = []
    for tag in range(TAGS):
        epc = bytes.fromhex("3034257BF7194E40") + tag.to_bytes(4, "big")
        port = 1 + tag % ANTENNAS
        read = TagRead.for_epc(epc, rssi_dbm=-55, tx_port=port, rx_port=port)
        flags = commands.DEFAULT_METADATA_FLAGS
        records.append(encode_stream_record(read, metadata_flags=flags).to_bytes())
    return b"".join(records[i % TAGS] for i in range(reads))


def measure(budget_s: float = 1.0) -> Capacity:
    """Scan and feed batches of the stream until ``budget_s`` has passed (at least one)."""
    buf = stream()
    scanner = Scanner()
    stage = PresenceStage([ZoneParams(f"zone-{z}") for z in range(ANTENNAS)])
    subject = np.arange(BATCH, dtype=np.int32) % TAGS
    device = np.zeros(BATCH, np.int32)
    reads, t0, started = 0, 0.0, time.perf_counter()
    while True:
        scan = scanner.scan(buf)
        t = t0 + READ_GAP_S * np.arange(len(scan), dtype=np.float64)
        zone = (scan.antenna - 1).astype(np.int32)
        batch = ReadBatch(t, subject, zone, scan.rssi, device, scan.antenna)
        stage.feed(batch, float(t[-1]))
        reads, t0 = reads + len(scan), t0 + READ_GAP_S * len(scan)
        elapsed = time.perf_counter() - started
        if elapsed >= budget_s:
            return Capacity(reads / elapsed, reads, elapsed)
