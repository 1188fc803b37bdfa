"""Kernel cost against reads and against distinct tags, calling ``bench.kernels``.

The stream generator gives about 15.5 reads/s per subject, so a duration is chosen for each
(reads, tags) cell. The kernel runs on the whole stream; the twin, which is slow, on its first
``twin_reads`` reads, and the kernel once more on that same prefix for the ratio.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from bench.kernels import batches, kernel_rate, stream, twin_rate
from gateway.stages.presence import EngineParams

READS_PER_S_PER_SUBJECT: Final = 15.5
BATCH: Final = 4096


@dataclass(frozen=True, slots=True)
class Cell:
    reads: int
    tags: int
    kernel_rps: float  # whole stream
    kernel_prefix_rps: float
    twin_rps: float

    @property
    def ratio(self) -> float:
        return self.kernel_prefix_rps / self.twin_rps


def cell(reads: int, tags: int, twin_reads: int) -> Cell:
    items = max(1, round(tags / 1.25))  # the generator adds a customer per four items
    duration = reads / (READS_PER_S_PER_SUBJECT * items * 1.25)
    full = stream(duration, items)
    params = EngineParams()
    fast, _ = kernel_rate(batches(full, BATCH), params)
    # At 100,000 tags the twin crawls (~1,000 reads/s: per-batch work over every subject seen),
    # and a shorter prefix would hide exactly that, because few tags have been seen early on.
    prefix = batches(full, BATCH, twin_reads)
    fast_prefix, kernel_events = kernel_rate(prefix, params)
    slow, twin_events = twin_rate(prefix, params)
    if kernel_events != twin_events:
        raise AssertionError(f"kernel and twin disagree at {reads} reads, {tags} tags")
    return Cell(len(full), tags, fast, fast_prefix, slow)
