"""The gateway's end of a display link: stop-and-wait with retransmission, sans-I/O.

One command is in flight at a time (docs/protocols/serial-display.md, section 4). ``send``
assigns the next sequence number and returns the bytes to write. The caller feeds whatever the
port delivers to ``receive_data`` and pulls events with ``next_event``; when ``deadline`` passes
without an event it calls ``retransmission(now)`` and writes what comes back. A retransmission
reuses the sequence number, so a display that did execute the command but whose ACK was lost
answers again without executing it twice. Time is an argument; this class reads no clock.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Final

from drivers.errors import EncodeError
from drivers.sentinel import NEED_DATA, NeedData
from drivers.serial_display.decoder import ReplyDecoder
from drivers.serial_display.frames import ErrorCode
from drivers.serial_display.messages import Ack, Command, Nak, encode

ACK_TIMEOUT_S: Final = 0.25
MAX_RETRIES: Final = 3


@dataclass(frozen=True, slots=True)
class Delivered:
    seq: int
    command: Command


@dataclass(frozen=True, slots=True)
class Failed:
    """The display refused the command (``code``) or never answered (``code`` is None)."""

    seq: int
    command: Command
    code: ErrorCode | None


@dataclass(slots=True)
class _InFlight:
    seq: int
    command: Command
    wire: bytes
    deadline: float
    retries: int = 0


class DisplayLink:
    def __init__(
        self,
        *,
        ack_timeout_s: float = ACK_TIMEOUT_S,
        max_retries: int = MAX_RETRIES,
        first_seq: int = 0,
    ) -> None:
        self.ack_timeout_s = ack_timeout_s
        self.max_retries = max_retries
        self.decoder = ReplyDecoder()
        self.stale_replies = 0  # replies for a sequence number not in flight
        self._next_seq = first_seq & 0xFF
        self._in_flight: _InFlight | None = None
        self._events: deque[Delivered | Failed] = deque()

    @property
    def busy(self) -> bool:
        return self._in_flight is not None

    @property
    def deadline(self) -> float | None:
        return None if self._in_flight is None else self._in_flight.deadline

    def send(self, command: Command, now: float) -> bytes:
        if self._in_flight is not None:
            raise EncodeError(f"command {self._in_flight.seq} is still waiting for its ACK")
        seq, self._next_seq = self._next_seq, (self._next_seq + 1) & 0xFF
        wire = encode(command, seq).to_bytes()
        self._in_flight = _InFlight(seq, command, wire, now + self.ack_timeout_s)
        return wire

    def receive_data(self, data: bytes) -> None:
        self.decoder.receive_data(data)

    def retransmission(self, now: float) -> bytes:
        """Bytes to write again if the deadline has passed; b"" when nothing is due."""
        flight = self._in_flight
        if flight is None or now < flight.deadline:
            return b""
        # Whatever half-frame the decoder holds is not going to complete after this long.
        self.decoder.give_up_partial()
        if flight.retries >= self.max_retries:
            self._finish(Failed(flight.seq, flight.command, None))
            return b""
        flight.retries += 1
        flight.deadline = now + self.ack_timeout_s
        return flight.wire

    def next_event(self) -> Delivered | Failed | NeedData:
        while not self._events:
            reply = self.decoder.next_frame()
            if reply is NEED_DATA:
                return NEED_DATA
            self._match(reply)
        return self._events.popleft()

    def _match(self, reply: Ack | Nak) -> None:
        flight = self._in_flight
        if flight is None or reply.seq != flight.seq:
            self.stale_replies += 1
            return
        if isinstance(reply, Ack):
            self._finish(Delivered(flight.seq, flight.command))
        else:
            self._finish(Failed(flight.seq, flight.command, reply.code))

    def _finish(self, event: Delivered | Failed) -> None:
        self._in_flight = None
        self._events.append(event)
