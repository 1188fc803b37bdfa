"""Sets of seqs kept as sorted, disjoint, inclusive ranges.

Deliveries arrive as runs of consecutive seqs (the uplink publishes in seq order), so a backlog
of a hundred thousand delivered rows that the disk will not let us delete yet is a handful of
ranges, not a hundred thousand integers. Values are immutable: the writer thread replaces the
set, and the event loop reads whichever one it finds, whole.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator


class SeqRanges:
    __slots__ = ("_highs", "_lows")

    def __init__(self, ranges: Iterable[tuple[int, int]] = ()) -> None:
        merged: list[tuple[int, int]] = []
        for low, high in sorted(ranges):
            if merged and low <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(high, merged[-1][1]))
            else:
                merged.append((low, high))
        self._lows = [low for low, _ in merged]
        self._highs = [high for _, high in merged]

    def added(self, seqs: Iterable[int]) -> SeqRanges:
        return SeqRanges([*self, *((s, s) for s in seqs)])

    def end_of(self, seq: int) -> int | None:
        """The last seq of the range that holds ``seq``; None when no range does."""
        i = bisect.bisect_right(self._lows, seq) - 1
        return self._highs[i] if i >= 0 and seq <= self._highs[i] else None

    def __contains__(self, seq: object) -> bool:
        return isinstance(seq, int) and self.end_of(seq) is not None

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return zip(self._lows, self._highs, strict=True)

    def __len__(self) -> int:
        """How many seqs, not how many ranges."""
        return sum(high - low + 1 for low, high in self)

    def __bool__(self) -> bool:
        return bool(self._lows)

    def __repr__(self) -> str:
        return f"SeqRanges({list(self)})"
