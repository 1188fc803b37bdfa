"""Link faults a simulated device can inject into the frames it sends.

``Faults`` holds the steady knobs (rates and the delivery mode); it is frozen, and a test or the
CLI changes faults while a simulator runs by assigning a new one (``dataclasses.replace``).
One-off events (a stall, a hang-up, a warning, a reboot) are methods of each simulator, since
what they mean depends on the device.

``FrameMangler`` applies the rates to outgoing frames and counts what it did, so a test can hold
the daemon's decoder statistics against the truth: every garbage byte should be discarded, every
corrupted frame rejected, and no good frame lost next to them.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from firmware_sim.pty import Chunking, SimPort


@dataclass(frozen=True, slots=True)
class Faults:
    garbage_rate: float = 0.0  # P(a burst of line noise precedes a frame)
    garbage_len: tuple[int, int] = (1, 12)  # bytes per burst, inclusive
    corrupt_rate: float = 0.0  # P(a frame goes out with a wrong checksum)
    chunking: Chunking = Chunking.WHOLE  # BYTEWISE: byte-at-a-time delivery
    return_loss_rate: float = 0.0  # UHF: P(a search cycle ends with a 0x0505 warning)


@dataclass(slots=True)
class FaultCounts:
    frames: int = 0  # frames sent intact
    garbage_bytes: int = 0
    corrupted_frames: int = 0
    corrupted_bytes: int = 0


def flip_last_byte(frame: bytes, rng: random.Random) -> bytes:
    """Break a frame whose checksum is its last byte(s) (ThingMagic, Modbus, PN532's DCS...)."""
    return frame[:-1] + bytes((frame[-1] ^ rng.randint(1, 0xFF),))


@dataclass(slots=True)
class FrameMangler:
    rng: random.Random
    corrupt: Callable[[bytes, random.Random], bytes] = flip_last_byte
    counts: FaultCounts = field(default_factory=FaultCounts)

    def apply(self, frames: Iterable[bytes], faults: Faults) -> bytes:
        """The bytes to put on the wire for ``frames`` under ``faults``."""
        out = bytearray()
        for frame in frames:
            if faults.garbage_rate and self.rng.random() < faults.garbage_rate:
                noise = self.rng.randbytes(self.rng.randint(*faults.garbage_len))
                out += noise
                self.counts.garbage_bytes += len(noise)
            if faults.corrupt_rate and self.rng.random() < faults.corrupt_rate:
                out += self.corrupt(frame, self.rng)
                self.counts.corrupted_frames += 1
                self.counts.corrupted_bytes += len(frame)
            else:
                out += frame
                self.counts.frames += 1
        return bytes(out)

    async def send(self, port: SimPort, frames: Iterable[bytes], faults: Faults) -> bool:
        """Write ``frames`` under ``faults``, delivered as ``faults.chunking`` says."""
        port.delivery.chunking = faults.chunking  # keeps the port's own gap and chunk size
        return await port.write(self.apply(frames, faults))
