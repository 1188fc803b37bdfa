"""A simulated NXP PN532 on HSU, behind a SimPort, with the cards of a scenario in its field.

It decodes host frames with the driver's ``Pn532CommandDecoder`` (wake-up bytes skipped) and
answers as the chip does (UM0701 6.2, docs/drivers/pn532.md 3.1): an ACK at once, then the response
frame. Answered: SAMConfiguration, GetFirmwareVersion (PN532 v1.6, ``32 01 06 07`` as
captured), RFConfiguration, InListPassiveTarget at 106 kbps type A (the cards in the reader's
zone, up to MaxTg, else NbTg = 0), InDeselect and InRelease (status 00). Any other command gets
the syntax-error frame after its ACK: no capture shows what the chip says to a command it does
not know, and the error frame is what the host must survive anyway. A NACK from the host
resends the last response; an ACK from the host (abort) is ignored, there being nothing to abort.

A card is a scenario customer whose raw id is 8, 14 or 20 hex digits (a 4-, 7- or 10-byte UID);
its ATQA and SAK are those of a MIFARE Classic 1K (4 bytes) or an Ultralight / NTAG (7 and 10).
The simulator does not model LowVbat: it answers before any wake-up.

Faults (``Faults``) apply to every frame sent, ACKs included, and may be replaced while
running; a corrupted frame has its DCS (its LCS for an ACK) broken. ``stall`` and ``hang_up``
are one-off events.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Final, assert_never

from drivers.pn532 import (
    PN532_V1_6,
    Ack,
    Command,
    ErrorFrame,
    FirmwareVersion,
    InformationFrame,
    InListPassiveTargetResponse,
    Nack,
    Pn532CommandDecoder,
    Pn532Frame,
    TypeATarget,
)
from drivers.pn532.frames import TFI_PN532_TO_HOST
from firmware_sim.faults import Faults, FrameMangler
from firmware_sim.pty import SimPort, incoming_frames
from firmware_sim.scenario import Scenario, ScenarioClock

UID_HEX_LENGTHS: Final = (8, 14, 20)
STATUS_OK: Final = b"\x00"
# A poll with bounded MaxRetries still spends a few RF timeouts before answering NbTg = 0.
DEFAULT_POLL_LATENCY_S: Final = 0.01
_HEX: Final = "0123456789ABCDEF"


def is_pn532_id(raw_id: str) -> bool:
    return len(raw_id) in UID_HEX_LENGTHS and all(c in _HEX for c in raw_id)


def target_for(raw_id: str, tg: int) -> TypeATarget:
    uid = bytes.fromhex(raw_id)
    # ATQA bits 7-6 give the UID size (ISO/IEC 14443-3): 00 single, 01 double, 10 triple.
    size_bits = UID_HEX_LENGTHS.index(len(raw_id)) << 6
    sak = 0x08 if len(uid) == 4 else 0x00
    return TypeATarget(tg=tg, atqa=bytes([0x00, 0x04 | size_bits]), sak=sak, uid=uid)


def break_checksum(frame: bytes, rng: random.Random) -> bytes:
    """Flip bits of the byte before the postamble: the DCS, or an ACK's LCS."""
    return frame[:-2] + bytes((frame[-2] ^ rng.randint(1, 0xFF),)) + frame[-1:]


@dataclass(slots=True)
class Pn532SimStats:
    commands: int = 0
    polls: int = 0
    cards_reported: int = 0
    unknown_commands: int = 0
    nacks: int = 0
    hang_ups: int = 0


class Pn532Sim:
    def __init__(
        self,
        port: SimPort,
        scenario: Scenario,
        zone: str,
        *,
        firmware: FirmwareVersion = PN532_V1_6,
        poll_latency_s: float = DEFAULT_POLL_LATENCY_S,
        seed: int = 0,
        clock: Callable[[], float] | None = None,
        faults: Faults | None = None,
    ) -> None:
        self.port = port
        self.zone = zone
        self.firmware = firmware
        self.poll_latency_s = poll_latency_s
        self.clock = clock or ScenarioClock()
        self.faults = faults or Faults()
        self.mangler = FrameMangler(random.Random(seed + 1), corrupt=break_checksum)
        self.stats = Pn532SimStats()
        self._visits = scenario.card_visits(zone, is_pn532_id)
        self._last_response = b""

    def cards_in_field(self, t: float) -> list[str]:
        """Raw ids of the cards in the field at scenario time ``t``, earliest arrival first."""
        return [v.subject for v in self._visits if v.covers(t)]

    async def run(self) -> None:
        """Serve until the port is closed (PortClosedError) or the task is cancelled."""
        frames: AsyncIterator[Pn532Frame] = incoming_frames(self.port, Pn532CommandDecoder)
        async for frame in frames:
            await self._handle(frame)

    def stall(self, seconds: float) -> None:
        self.port.stall(seconds)

    async def hang_up(self, down_s: float = 0.5) -> None:
        """Unplug the module for ``down_s``; it comes back on a new pty behind the same path."""
        self.stats.hang_ups += 1
        self.port.hang_up()
        self._last_response = b""
        await asyncio.sleep(down_s)
        self.port.reconnect()

    async def _handle(self, frame: Pn532Frame) -> None:
        match frame:
            case Ack() | ErrorFrame():
                return  # abort, of nothing; an error frame never comes from a host
            case Nack():
                self.stats.nacks += 1
                if self._last_response:
                    await self._send(self._last_response)
            case InformationFrame():
                self.stats.commands += 1
                await self._send(Ack().to_bytes())
                response = await self._respond(frame)
                self._last_response = response
                await self._send(response)
            case _:
                assert_never(frame)

    async def _respond(self, command: InformationFrame) -> bytes:
        match command.code:
            case Command.GET_FIRMWARE_VERSION:
                params = self.firmware.to_params()
            case Command.SAM_CONFIGURATION | Command.RF_CONFIGURATION:
                params = b""
            case Command.IN_DESELECT | Command.IN_RELEASE:
                params = STATUS_OK
            case Command.IN_LIST_PASSIVE_TARGET if command.params[1:2] == b"\x00":
                params = await self._poll(max_tg=command.params[0])
            case _:
                self.stats.unknown_commands += 1
                return ErrorFrame().to_bytes()
        return InformationFrame(TFI_PN532_TO_HOST, command.code + 1, params).to_bytes()

    async def _poll(self, max_tg: int) -> bytes:
        self.stats.polls += 1
        await asyncio.sleep(self.poll_latency_s)
        raw_ids = self.cards_in_field(self.clock())[: max(1, min(max_tg, 2))]
        self.stats.cards_reported += len(raw_ids)
        targets = tuple(target_for(r, tg) for tg, r in enumerate(raw_ids, start=1))
        return InListPassiveTargetResponse(targets).to_params()

    async def _send(self, frame: bytes) -> None:
        await self.mangler.send(self.port, [frame], self.faults)
