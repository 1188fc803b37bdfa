"""A bounded receive buffer shared by the frame decoders.

Decoders append whatever the port delivered and then look for frames in it. The buffer never
grows without limit: a device that streams garbage with no frame boundary would otherwise eat the
Pi's memory, so past ``max_size`` the oldest bytes are dropped and counted as discarded.
Searches are incremental (h11's ``_receivebuffer`` does the same) so that a frame arriving one
byte at a time is not rescanned from the start on every byte.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

DEFAULT_MAX_SIZE: Final = 64 * 1024


@dataclass(slots=True)
class DecoderStats:
    """What a decoder has seen: the counters that end up in status and metrics."""

    frames: int = 0
    discarded_bytes: int = 0  # bytes dropped while resynchronising (garbage, broken frames)
    bad_checksum: int = 0
    bad_length: int = 0
    malformed: int = 0  # frames with a valid checksum whose content makes no sense

    def rejections(self) -> dict[str, int]:
        """What was refused, by reason: the figures an operator watches for a bad line."""
        return {
            "discarded_bytes": self.discarded_bytes,
            "bad_checksum": self.bad_checksum,
            "bad_length": self.bad_length,
            "malformed": self.malformed,
        }

    def as_dict(self) -> dict[str, int]:
        return {"frames": self.frames, **self.rejections()}


@dataclass(slots=True)
class ReceiveBuffer:
    max_size: int = DEFAULT_MAX_SIZE
    stats: DecoderStats = field(default_factory=DecoderStats)
    _data: bytearray = field(default_factory=bytearray)

    def __len__(self) -> int:
        return len(self._data)

    def __bytes__(self) -> bytes:
        return bytes(self._data)

    def append(self, data: bytes | bytearray | memoryview) -> None:
        self._data += data
        overflow = len(self._data) - self.max_size
        if overflow > 0:
            self.discard(overflow)

    def peek(self, n: int, start: int = 0) -> bytes:
        return bytes(self._data[start : start + n])

    def view(self) -> memoryview:
        """A view of the buffered bytes; release it before the next append or discard."""
        return memoryview(self._data)

    def find(self, needle: bytes, start: int = 0) -> int:
        return self._data.find(needle, start)

    def byte_at(self, index: int) -> int:
        return self._data[index]

    def take(self, n: int) -> bytes:
        """Remove and return the first ``n`` bytes: a complete, accepted frame."""
        out = bytes(self._data[:n])
        del self._data[:n]
        return out

    def discard(self, n: int) -> None:
        """Drop the first ``n`` bytes as garbage and count them."""
        n = min(n, len(self._data))
        del self._data[:n]
        self.stats.discarded_bytes += n

    def discard_until(self, needle: bytes, start: int = 1) -> bool:
        """Drop bytes up to the next ``needle`` at or after ``start``; all of them if none.

        Returns whether a candidate start was found.
        """
        at = self._data.find(needle, start)
        if at < 0:
            # Keep a tail that could be the beginning of a split needle.
            keep = len(needle) - 1
            self.discard(max(0, len(self._data) - keep))
            return False
        self.discard(at)
        return True


class BufferedDecoder:
    """What every frame decoder shares: a bounded receive buffer, its counters, and the h11-style
    ``receive_data``. Subclasses add ``next_frame``."""

    def __init__(self, max_size: int = DEFAULT_MAX_SIZE) -> None:
        self._buffer = ReceiveBuffer(max_size=max_size)

    @property
    def stats(self) -> DecoderStats:
        return self._buffer.stats

    @property
    def buffered(self) -> int:
        """Bytes waiting for the rest of their frame."""
        return len(self._buffer)

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        self._buffer.append(data)

    def drop_partial(self) -> None:
        """Forget a half frame (counted as discarded): the port was reopened, and its rest
        will never come. The counters carry on, so they stay totals over the session."""
        self._buffer.discard(len(self._buffer))
