"""The reads of one port read into the pipeline's columns: EPC bytes -> subject id, antenna ->
zone, arrival time, in one kernel call (``ingest``), with no Python per read.

EPCs are interned through an open-addressing hash table kept in numpy arrays (``EpcTable``): a
slot holds a subject id and where its EPC's bytes lie in a byte heap. ``ingest`` looks each
read's EPC up in the buffer the stream scan framed, maps its TX port to a zone, spreads its
arrival over the span in which the port's bytes came, and writes one row per read into the read
collector's columns. An EPC it does not find gets subject ``-1`` and its read index in
``missing``: only then does Python run (``gateway.devices.base``), interning the new EPC with
``Subjects`` and adding it to the table (``insert``). Ids released by the presence stage leave
the table by a rebuild (``rehash``), which also grows it: both are rare (a forget sweep, the
table half full).

``gateway.reads.intern_twin`` is the plain-Python twin (a dict keyed by the EPC's
bytes) the tests hold these to.
"""

from __future__ import annotations

from typing import Final

import numpy as np
from numpy.typing import NDArray

from drivers.compiled import kernel

U8 = NDArray[np.uint8]
I16 = NDArray[np.int16]
I32 = NDArray[np.int32]
I64 = NDArray[np.int64]
F32 = NDArray[np.float32]
F64 = NDArray[np.float64]

EMPTY: Final = -1  # slot_id of a free slot
# 32-bit FNV-1a: every step fits an int64, so numba and Python compute the same without overflow.
FNV_OFFSET: Final = 0x811C9DC5
FNV_PRIME: Final = 0x01000193
MASK32: Final = 0xFFFFFFFF


@kernel
def epc_hash(data: U8, off: int, n: int) -> int:
    h = FNV_OFFSET
    for i in range(off, off + n):
        h = ((h ^ int(data[i])) * FNV_PRIME) & MASK32
    return h


@kernel
def find(data: U8, off: int, n: int, slot_id: I32, slot_off: I64, slot_len: I32, heap: U8) -> int:
    """The slot of ``data[off:off + n]``, or of the free slot where it would go."""
    mask: int = slot_id.shape[0] - 1
    s = epc_hash(data, off, n) & mask
    while slot_id[s] != EMPTY:
        if slot_len[s] == n:
            at = slot_off[s]
            same = True
            for k in range(n):
                if heap[at + k] != data[off + k]:
                    same = False
                    break
            if same:
                return s
        s = (s + 1) & mask
    return s


@kernel
def insert(
    data: U8, off: int, n: int, subject: int, slot_id: I32, slot_off: I64, slot_len: I32,
    heap: U8, used: int,
) -> int:  # fmt: skip
    """Add ``data[off:off + n]`` as ``subject`` (the caller leaves a free slot and ``n`` bytes
    of heap past ``used``); returns the heap bytes used. An EPC already there keeps its id."""
    s = find(data, off, n, slot_id, slot_off, slot_len, heap)
    if slot_id[s] != EMPTY:
        return used
    heap[used : used + n] = data[off : off + n]
    slot_id[s], slot_off[s], slot_len[s] = subject, used, n
    return used + n


@kernel
def rehash(
    old_id: I32, old_off: I64, old_len: I32, old_heap: U8, gone: NDArray[np.bool_],
    slot_id: I32, slot_off: I64, slot_len: I32, heap: U8,
) -> int:  # fmt: skip
    """Every entry of the old table whose id is not ``gone`` into the new, empty one (sized by
    the caller); returns the new heap's bytes used."""
    used = 0
    for s in range(old_id.shape[0]):
        subject = old_id[s]
        if subject != EMPTY and not (subject < gone.shape[0] and gone[subject]):
            n = old_len[s]
            used = insert(old_heap, old_off[s], n, subject, slot_id, slot_off, slot_len, heap,
                          used)  # fmt: skip
    return used


@kernel
def ingest(
    buf: U8, epc_off: I64, epc_len: I32, antenna: I16, rssi: F32, now: float, span: float,
    device: int, slot_id: I32, slot_off: I64, slot_len: I32, heap: U8, zone_of: I32,
    antenna_reads: I64, t_out: F64, subject_out: I32, zone_out: I32, rssi_out: F32,
    device_out: I32, antenna_out: I16, at: int, missing: I64,
) -> tuple[int, int]:  # fmt: skip
    """One port read's reads (the scan's columns over ``buf``) into the output columns from row
    ``at``; reads on antennas that ``zone_of`` maps to no zone (-1) are skipped. A read's time
    is ``now`` less its age: its bytes (complete just past the EPC) came at an even pace over
    the last ``span`` seconds. Returns (rows written, EPCs not found); the read index of each
    EPC not found is in ``missing``, in row order, and its row's subject is -1."""
    size = buf.shape[0]
    rows = 0
    lost = 0
    for i in range(epc_off.shape[0]):
        a = antenna[i]
        zone = zone_of[a]
        if zone < 0:
            continue
        off, n = epc_off[i], epc_len[i]
        s = find(buf, off, n, slot_id, slot_off, slot_len, heap)
        subject = slot_id[s]
        if subject == EMPTY:
            missing[lost] = i
            lost += 1
        age = span * (1.0 - (off + n) / size) if span > 0 and size > 0 else 0.0
        r = at + rows
        t_out[r] = now - min(max(age, 0.0), span)
        subject_out[r] = subject
        zone_out[r] = zone
        rssi_out[r] = rssi[i]
        device_out[r] = device
        antenna_out[r] = a
        antenna_reads[a] += 1
        rows += 1
    return rows, lost
