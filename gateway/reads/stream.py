"""A streaming ThingMagic port's bytes to the pipeline's read columns in one kernel call.

At a tick, each streaming port's bytes go through the batched scan (``drivers.thingmagic.batch``:
frames found, tag reads as columns) and then ``ingest`` (``gateway.reads.intern``: EPC ->
subject, antenna -> zone, arrival time, a row per read). As two calls from Python, that is two
checks of every argument, two unboxings of a score of arrays, and the scan's columns sliced
into an object in between: together about as much as the work itself, paid per port and tick.
``scan_ingest`` is the two in one call; the scan's columns stay where the caller's ``Scanner``
keeps them, for the rare frames that are not tag reads.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from drivers.compiled import kernel
from drivers.thingmagic.batch import scan_kernel
from gateway.reads.intern import F32, F64, I16, I32, I64, U8, ingest


@kernel
def scan_ingest(  # the arguments of scan_kernel, then those of ingest after its scan columns
    buf: U8, table: NDArray[np.uint16], epc_off: I64, epc_len: I32, antenna: I16, rssi: F32,
    timestamp: I64, read_at: I64, other_off: I64, other_len: I32, counters: I64,
    now: float, span: float, device: int, slot_id: I32, slot_off: I64, slot_len: I32,
    heap: U8, zone_of: I32, antenna_reads: I64, t_out: F64, subject_out: I32, zone_out: I32,
    rssi_out: F32, device_out: I32, antenna_out: I16, at: int, missing: I64,
) -> tuple[int, int, int, int, int]:  # fmt: skip
    """Returns the scan's (consumed, reads, other frames) and ingest's (rows, EPCs not
    found); see both for what each means."""
    consumed, nreads, nother = scan_kernel(
        buf, table, epc_off, epc_len, antenna, rssi, timestamp, read_at, other_off, other_len,
        counters,
    )  # fmt: skip
    rows, lost = ingest(
        buf, epc_off[:nreads], epc_len[:nreads], antenna[:nreads], rssi[:nreads], now, span,
        device, slot_id, slot_off, slot_len, heap, zone_of, antenna_reads, t_out, subject_out,
        zone_out, rssi_out, device_out, antenna_out, at, missing,
    )  # fmt: skip
    return consumed, nreads, nother, rows, lost
