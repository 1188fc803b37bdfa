"""Big-endian field reading and writing shared by the record and command codecs.

Reading past the end of a frame's data is a FrameError (the wire sent something short);
a value that does not fit its field when writing is an EncodeError (the caller's mistake).
"""

from __future__ import annotations

from drivers.errors import EncodeError, FrameError


def pack_uint(value: int, size: int, name: str) -> bytes:
    try:
        return value.to_bytes(size, "big")
    except OverflowError:
        raise EncodeError(f"{name}={value} does not fit in {size} unsigned bytes") from None


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
