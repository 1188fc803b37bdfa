"""Modbus RTU on bytes, for code that holds a byte stream instead of a pymodbus client.

The framing and CRC-16/MODBUS are pymodbus's (``FramerRTU``); this module only adapts them to
the shape of our other decoders (``receive_data`` / ``next_frame`` / ``stats``) so that the
simulator and the tests can use them, and wraps pymodbus's exceptions once.

RTU frames carry no length and no start marker; pymodbus sizes a frame from its function code and
byte count. Its recovery, as its ``FramerRTU`` docstring lists: skip leading bytes that cannot
start a known PDU, wait while a frame is incomplete, and on a CRC mismatch drop everything
buffered. That last rule is pymodbus's, not ours: on a master-driven bus the next request or
reply starts a fresh buffer anyway.
"""

from __future__ import annotations

from pymodbus.exceptions import ModbusException
from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU, ModbusPDU

from drivers.buffer import DecoderStats, ReceiveBuffer
from drivers.errors import EncodeError
from drivers.sentinel import NEED_DATA, NeedData

MAX_ADU: int = FramerRTU.MAX_SIZE


def encode_adu(pdu: ModbusPDU) -> bytes:
    """``device id | function | data | CRC lo | CRC hi`` for a request or a response PDU."""
    try:
        return FramerRTU(DecodePDU(is_server=False)).buildFrame(pdu)
    except (ModbusException, ValueError) as e:
        raise EncodeError(f"cannot encode {pdu}: {e}") from e


class RtuDecoder:
    """``is_server=True`` decodes requests (a slave's view), False decodes responses."""

    def __init__(self, *, is_server: bool, max_size: int = 4 * MAX_ADU) -> None:
        self._framer = FramerRTU(DecodePDU(is_server=is_server))
        self._buf = ReceiveBuffer(max_size=max_size)

    @property
    def stats(self) -> DecoderStats:
        return self._buf.stats

    def receive_data(self, data: bytes) -> None:
        self._buf.append(data)

    def next_frame(self) -> ModbusPDU | NeedData:
        while len(self._buf):
            try:
                used, pdu = self._framer.handleFrame(bytes(self._buf), 0, 0)
            except (ModbusException, ValueError, IndexError):
                # A frame with a good CRC whose body pymodbus cannot decode: drop it all.
                self._buf.stats.malformed += 1
                self._buf.discard(len(self._buf))
                continue
            if pdu is not None:
                self._buf.take(used)
                self._buf.stats.frames += 1
                return pdu
            if used == 0:
                return NEED_DATA
            self._buf.stats.bad_checksum += 1
            self._buf.discard(used)
        return NEED_DATA
