"""A simulated EM4100 card reader (RDM6300, or ID-12LA with ``style="id12"``) on a SimPort.

The reader only transmits (arduino12/rdm6300 issue #20: the RX pin is unused). While the
scenario has a customer whose card is an EM4100 one (a raw id of 10 hex digits) in the reader's
zone, it sends that card's frame over and over, every ``period_s`` (drawn per frame; the real
period is unconfirmed, under 220 ms, docs/drivers/em4100.md 2.3); with nobody there it is silent.
Two cards in the field at once collide on a real 125 kHz reader; here the one that came first is
read until it leaves.

Frames come from the driver's own ``Em4100Frame.to_bytes``. Faults (``Faults``) apply to every
frame and may be replaced while running: garbage before frames, corrupted checksums (the
decoder must count them as ``bad_checksum``), byte-at-a-time delivery. One-off events are
methods: ``stall`` and ``hang_up``. ``sent`` keeps the ground truth of what went out intact.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from drivers.em4100 import Em4100Frame, Style
from firmware_sim.faults import Faults, FrameMangler
from firmware_sim.pty import SimPort
from firmware_sim.scenario import Scenario, ScenarioClock

DEFAULT_PERIOD_S: Final = (0.1, 0.2)
_HEX: Final = "0123456789ABCDEF"


def is_em4100_id(raw_id: str) -> bool:
    return len(raw_id) == 10 and all(c in _HEX for c in raw_id)


def corrupt_checksum(frame: bytes, rng: random.Random) -> bytes:
    """The same frame with another checksum: still well-formed, so only the XOR can catch it."""
    good = frame[11:13].decode("ascii")
    bad = rng.choice([f"{v:02X}" for v in range(256) if f"{v:02X}" != good])
    return frame[:11] + bad.encode("ascii") + frame[13:]


@dataclass(frozen=True, slots=True)
class SentRead:
    t: float  # scenario time
    raw_id: str


class Em4100Sim:
    def __init__(
        self,
        port: SimPort,
        scenario: Scenario,
        zone: str,
        *,
        style: Style = "rdm6300",
        period_s: tuple[float, float] = DEFAULT_PERIOD_S,
        seed: int = 0,
        clock: Callable[[], float] | None = None,
        faults: Faults | None = None,
    ) -> None:
        self.port = port
        self.zone = zone
        self.style: Style = style
        self.period_s = period_s
        self.clock = clock or ScenarioClock()
        self.faults = faults or Faults()
        self.mangler = FrameMangler(random.Random(seed + 1), corrupt=corrupt_checksum)
        self.sent: list[SentRead] = []
        self.hang_ups = 0
        self._rng = random.Random(seed)
        self._visits = scenario.card_visits(zone, is_em4100_id)

    def card_in_field(self, t: float) -> str | None:
        """The card the reader sees at scenario time ``t``: the earliest arrival still there."""
        return next((v.subject for v in self._visits if v.covers(t)), None)

    async def run(self) -> None:
        """Transmit until cancelled; a hung-up port just loses what is sent meanwhile."""
        while True:
            await asyncio.sleep(self._rng.uniform(*self.period_s))
            now = self.clock()
            raw_id = self.card_in_field(now)
            if raw_id is not None and self.port.is_up:
                await self._send(now, raw_id)

    def stall(self, seconds: float) -> None:
        """Nothing leaves the reader for ``seconds``; frames queue up and arrive late."""
        self.port.stall(seconds)

    async def hang_up(self, down_s: float = 0.5) -> None:
        """Unplug the reader for ``down_s``; it comes back on a new pty behind the same path."""
        self.hang_ups += 1
        self.port.hang_up()
        await asyncio.sleep(down_s)
        self.port.reconnect()

    async def _send(self, now: float, raw_id: str) -> None:
        intact = self.mangler.counts.frames
        frame = Em4100Frame.from_raw_id(raw_id).to_bytes(self.style)
        delivered = await self.mangler.send(self.port, [frame], self.faults)
        if delivered and self.mangler.counts.frames > intact:
            self.sent.append(SentRead(now, raw_id))
