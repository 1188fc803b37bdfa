"""Event ids: UUIDv7 (RFC 9562), time-ordered so that consumers and the outbox sort by them.

Python 3.11's uuid module has no uuid7; the layout is 48 bits of Unix milliseconds, the version
nibble, 12 random bits, the variant, and 62 random bits. Within one millisecond ids are ordered by a
counter held in the 12 ``rand_a`` bits (RFC 9562 section 6.2, method 1), so ids minted by one
gateway never go backwards even when events come in bursts.
"""

from __future__ import annotations

import os
import time
import uuid


class Uuid7Factory:
    def __init__(self) -> None:
        self._last_ms = -1
        self._counter = 0

    def __call__(self, unix_ms: int | None = None) -> uuid.UUID:
        ms = time.time_ns() // 1_000_000 if unix_ms is None else unix_ms
        if ms <= self._last_ms:
            ms = self._last_ms
            self._counter += 1
            if self._counter > 0xFFF:  # counter exhausted: borrow the next millisecond
                ms += 1
                self._counter = 0
        else:
            self._counter = int.from_bytes(os.urandom(2), "big") & 0x3FF  # leave room to count
        self._last_ms = ms
        rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
        value = (ms & ((1 << 48) - 1)) << 80
        value |= 0x7 << 76
        value |= self._counter << 64
        value |= 0b10 << 62
        value |= rand_b
        return uuid.UUID(int=value)


new_event_id = Uuid7Factory()
