"""One reader's table of EPC bytes -> subject id, in the numpy arrays that ``ingest`` searches
(``gateway.reads.intern``: an open-addressing hash table over a byte heap).

Python touches it only for what is new: an EPC the kernel did not find is interned by the
caller and added here (``insert``); ids the presence stage releases leave by a rebuild
(``release``). The table is kept at most half full, so that a search ends after a few slots.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Final

import numpy as np
from numpy.typing import NDArray

from gateway.reads import intern

INITIAL_SLOTS: Final = 64
HEAP_PER_SLOT: Final = 16  # bytes of EPC per slot to start with (a 96-bit EPC is 12)


class EpcTable:
    def __init__(self, slots: int = INITIAL_SLOTS) -> None:
        self._empty(slots, slots * HEAP_PER_SLOT)
        self.count = 0  # entries, at most (an EPC inserted twice is counted twice)

    def _empty(self, slots: int, heap: int) -> None:
        self.slot_id = np.full(slots, intern.EMPTY, np.int32)
        self.slot_off = np.zeros(slots, np.int64)
        self.slot_len = np.zeros(slots, np.int32)
        self.heap = np.empty(heap, np.uint8)
        self.used = 0

    @property
    def slots(self) -> int:
        return int(self.slot_id.shape[0])

    def arrays(
        self,
    ) -> tuple[NDArray[np.int32], NDArray[np.int64], NDArray[np.int32], NDArray[np.uint8]]:
        """What ``ingest`` searches: slot ids, slot offsets and lengths, the heap."""
        return self.slot_id, self.slot_off, self.slot_len, self.heap

    def insert(self, data: NDArray[np.uint8], off: int, n: int, subject: int) -> None:
        """``data[off:off + n]`` is the EPC of ``subject`` from now on (an EPC already in the
        table keeps its id)."""
        if 2 * (self.count + 1) > self.slots:
            self._rebuild(np.zeros(0, np.bool_), grow=True)
        if self.used + n > self.heap.shape[0]:
            heap = np.empty(max(2 * self.heap.shape[0], self.used + n), np.uint8)
            heap[: self.used] = self.heap[: self.used]
            self.heap = heap
        self.used = intern.insert(
            data, off, n, subject, self.slot_id, self.slot_off, self.slot_len, self.heap, self.used
        )
        self.count += 1

    def release(self, ids: Collection[int]) -> None:
        """Forget the EPCs of these subjects (their ids will name others)."""
        if not ids:
            return
        gone = np.zeros(max(ids) + 1, np.bool_)
        gone[list(ids)] = True
        self._rebuild(gone, grow=False)

    def _rebuild(self, gone: NDArray[np.bool_], *, grow: bool) -> None:
        live_slots = self.slot_id != intern.EMPTY
        if gone.shape[0]:
            ids = self.slot_id[live_slots]
            live_slots[live_slots] = ~gone[np.minimum(ids, gone.shape[0] - 1)] | (
                ids >= gone.shape[0]
            )
        live = int(np.count_nonzero(live_slots))
        slots = max(INITIAL_SLOTS, self.slots * 2 if grow else self.slots)
        while 2 * (live + 1) > slots:
            slots *= 2
        heap = int(self.slot_len[live_slots].sum())
        old = self.arrays()
        self._empty(slots, max(2 * heap, slots * HEAP_PER_SLOT // 2))
        self.used = intern.rehash(*old, gone, *self.arrays())
        self.count = live
