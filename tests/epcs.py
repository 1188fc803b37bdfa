"""EPCs handed to a device context the way a port read hands them over: in one buffer, by offset."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gateway.devices.base import DeviceContext


def emit(
    ctx: DeviceContext, epcs: Sequence[bytes], antennas: Sequence[int], rssi: Sequence[float]
) -> None:
    lengths = [len(e) for e in epcs]
    offsets = np.cumsum([0, *lengths[:-1]], dtype=np.int64)
    ctx.emit_reads(
        b"".join(epcs), offsets, np.array(lengths, np.int32), np.array(antennas, np.int16),
        np.array(rssi, np.float32),
    )  # fmt: skip
