"""A bounds-checked reader over a frame's data: running off the end is a FrameError."""

from __future__ import annotations

from drivers.errors import FrameError


class Cursor:
    __slots__ = ("_data", "pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self._data = data
        self.pos = pos

    @property
    def remaining(self) -> int:
        return len(self._data) - self.pos

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self._data):
            raise FrameError(f"record ends at byte {len(self._data)}, {end} needed")
        out = self._data[self.pos : end]
        self.pos = end
        return out

    def uint(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def u8(self) -> int:
        return self.uint(1)

    def u16(self) -> int:
        return self.uint(2)

    def rest(self) -> bytes:
        return self.take(self.remaining)

    def expect_end(self) -> None:
        if self.remaining:
            raise FrameError(f"{self.remaining} unexpected trailing bytes")
