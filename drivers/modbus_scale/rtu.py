"""Modbus RTU on bytes, for code that holds a byte stream instead of a pymodbus client.

The framing and CRC-16/MODBUS are pymodbus's (``FramerRTU``); this module only adapts them to
the shape of our other decoders (``receive_data`` / ``next_frame`` / ``stats``) so that the
simulator and the tests can use them, and wraps pymodbus's exceptions once.

RTU frames carry no length and no start marker; a frame is sized from its function code and
byte count by pymodbus's PDU classes (``calculateRtuFrameSize``). pymodbus's own
``FramerRTU.handleFrame`` consumes the whole buffer with each frame (a master reads one reply per
request) and drops everything on a CRC mismatch. A simulator that may receive several requests in
one read needs more, so the scan here is ours and the parts are pymodbus's: at each offset, size a
candidate; wait while it is incomplete; on a bad CRC or an unknown function code drop one byte
and try the next offset. That makes the result independent of how the bytes were chunked.
"""

from __future__ import annotations

from pymodbus.exceptions import ModbusException
from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU, ModbusPDU

from drivers.buffer import BufferedDecoder
from drivers.errors import EncodeError
from drivers.sentinel import NEED_DATA, NeedData

MAX_ADU: int = FramerRTU.MAX_SIZE


def encode_adu(pdu: ModbusPDU) -> bytes:
    """``device id | function | data | CRC lo | CRC hi`` for a request or a response PDU."""
    try:
        return FramerRTU(DecodePDU(is_server=False)).buildFrame(pdu)
    except (ModbusException, ValueError) as e:
        raise EncodeError(f"cannot encode {pdu}: {e}") from e


class RtuDecoder(BufferedDecoder):
    """``is_server=True`` decodes requests (a slave's view), False decodes responses."""

    def __init__(self, *, is_server: bool, max_size: int = 4 * MAX_ADU) -> None:
        self._pdus = DecodePDU(is_server=is_server)
        super().__init__(max_size)

    def next_frame(self) -> ModbusPDU | NeedData:
        buf = self._buffer
        while len(buf) >= FramerRTU.MIN_SIZE:
            data = buf.peek(MAX_ADU)  # no frame is longer; garbage past it can wait
            size = self._candidate_size(data)
            if size is None:
                buf.discard(1)
                continue
            if size == 0 or len(data) < size:
                return NEED_DATA
            pdu = self._maybe_pdu(data[:size])
            if pdu is None:
                buf.discard(1)
                continue
            buf.take(size)
            buf.stats.frames += 1
            return pdu
        return NEED_DATA

    def _candidate_size(self, data: bytes) -> int | None:
        """Frame size at offset 0; 0 = not yet known; None = no PDU starts here."""
        pdu_class = self._pdus.lookupPduClass(data)
        if pdu_class is None:
            return None
        try:
            size = pdu_class.calculateRtuFrameSize(data)
        except ModbusException:
            return None
        if size and not FramerRTU.MIN_SIZE <= size <= MAX_ADU:
            self._buffer.stats.bad_length += 1
            return None
        return size

    def _maybe_pdu(self, frame: bytes) -> ModbusPDU | None:
        crc = (frame[-2] << 8) + frame[-1]  # the order FramerRTU.compute_CRC returns it in
        if not FramerRTU.check_CRC(frame[:-2], crc):
            self._buffer.stats.bad_checksum += 1
            return None
        pdu = self._pdus.decode(frame[1:-2])
        if pdu is None:  # a good CRC around a body pymodbus cannot decode
            self._buffer.stats.malformed += 1
            return None
        pdu.dev_id = frame[0]
        return pdu
