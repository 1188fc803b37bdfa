"""A sans-I/O PN532 card poller: which bytes to send next, and what a received frame means.

The whole conversation is one table (h11 ``_state.py`` style): each state awaits either the
chip's ACK or its response to one command, and entering a state that sends a command returns
that command's bytes. The caller owns the port and the clock::

    poller = Pn532Poller()
    write(poller.start())                    # wake-up + SAMConfiguration
    while True:
        frame = read_frame(timeout=poller.timeout_s)
        reaction = poller.timed_out() if frame is None else poller.receive(frame)
        write(reaction.send); handle(reaction.events)
        if poller.state is State.IDLE: sleep(interval); write(poller.poll())

Start-up: SAMConfiguration (the first command after a wake-up from LowVbat), GetFirmwareVersion
(proves the chip is a PN532 and names it), RFConfiguration MaxRetries (without it the chip
waits for a card forever and the poll never answers). Then InListPassiveTarget at 106 kbps type
A, once per ``poll()``. A response that arrives without its ACK is accepted: the ACK was lost on
the wire, the command evidently ran. NACK resends the last command; a syntax-error frame, a
malformed response or a time-out take the poller OFFLINE, and the caller decides when to
``start()`` again. Frames nobody asked for (a late response after a time-out) are counted in
``stray_frames`` and change nothing.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, assert_never

from drivers.errors import DriverError, FrameError
from drivers.pn532 import commands
from drivers.pn532.commands import Command
from drivers.pn532.frames import ACK_FRAME, Ack, ErrorFrame, InformationFrame, Nack, Pn532Frame
from drivers.pn532.responses import FirmwareVersion, InListPassiveTargetResponse, TypeATarget

# The chip ACKs within 15 ms (nfcpy); the rest is UART and scheduling slack on a busy Pi.
ACK_TIMEOUT_S: Final = 0.2
# With MaxRetries bounded a poll answers in tens of milliseconds; SAMConfiguration may take
# longer while the chip leaves LowVbat.
RESPONSE_TIMEOUT_S: Final = 1.0


class Pn532StateError(DriverError):
    """The caller asked for something the poller's state does not allow."""


class State(enum.Enum):
    OFFLINE = "offline"
    SAM_ACK = "sam-ack"
    SAM_RESPONSE = "sam-response"
    FIRMWARE_ACK = "firmware-ack"
    FIRMWARE_RESPONSE = "firmware-response"
    RETRIES_ACK = "retries-ack"
    RETRIES_RESPONSE = "retries-response"
    IDLE = "idle"
    POLL_ACK = "poll-ack"
    POLL_RESPONSE = "poll-response"
    RELEASE_ACK = "release-ack"
    RELEASE_RESPONSE = "release-response"


class Input(enum.Enum):
    START = "start"  # caller
    POLL = "poll"  # caller
    TIMEOUT = "timeout"  # caller: nothing came within timeout_s
    ACK = "ack"
    NACK = "nack"
    ERROR = "error"  # syntax-error frame
    RESPONSE = "response"  # the awaited response, no card in it
    CARD = "card"  # the awaited InListPassiveTarget response, with a card
    MALFORMED = "malformed"  # the awaited response code, with data that makes no sense


# (command sent on entering the *_ACK state, state after its response)
_STEPS: Final = {
    State.SAM_ACK: (Command.SAM_CONFIGURATION, State.SAM_RESPONSE, State.FIRMWARE_ACK),
    State.FIRMWARE_ACK: (Command.GET_FIRMWARE_VERSION, State.FIRMWARE_RESPONSE, State.RETRIES_ACK),
    State.RETRIES_ACK: (Command.RF_CONFIGURATION, State.RETRIES_RESPONSE, State.IDLE),
    State.POLL_ACK: (Command.IN_LIST_PASSIVE_TARGET, State.POLL_RESPONSE, State.IDLE),
    State.RELEASE_ACK: (Command.IN_RELEASE, State.RELEASE_RESPONSE, State.IDLE),
}


def _build_table() -> dict[State, dict[Input, State]]:
    table: dict[State, dict[Input, State]] = {state: {} for state in State}
    for ack_state, (_, response_state, done) in _STEPS.items():
        for awaiting in (ack_state, response_state):
            table[awaiting] = {
                Input.RESPONSE: done,
                Input.NACK: awaiting,
                Input.ERROR: State.OFFLINE,
                Input.MALFORMED: State.OFFLINE,
                Input.TIMEOUT: State.OFFLINE,
            }
        table[ack_state][Input.ACK] = response_state
    for polling in (State.POLL_ACK, State.POLL_RESPONSE):
        table[polling][Input.CARD] = State.RELEASE_ACK
    table[State.IDLE][Input.POLL] = State.POLL_ACK
    for state in State:
        table[state][Input.START] = State.SAM_ACK
    return table


TRANSITIONS: Final = _build_table()
# The command whose ACK or response each waiting state expects.
AWAITED: Final = {s: step[0] for a, step in _STEPS.items() for s in (a, step[1])}


@dataclass(frozen=True, slots=True)
class Configured:
    firmware: FirmwareVersion


@dataclass(frozen=True, slots=True)
class CardsPresent:
    targets: tuple[TypeATarget, ...]


@dataclass(frozen=True, slots=True)
class NoCard:
    pass


@dataclass(frozen=True, slots=True)
class ChipLost:
    reason: str  # the Input that took the poller offline: "timeout", "error", "malformed"


PollerEvent = Configured | CardsPresent | NoCard | ChipLost


@dataclass(frozen=True, slots=True)
class Reaction:
    send: bytes = b""
    events: tuple[PollerEvent, ...] = ()


class Pn532Poller:
    def __init__(
        self,
        *,
        release: bool = False,
        mx_rty_passive_activation: int = 0x01,
    ) -> None:
        """``release``: send InRelease after each card found.

        Off by default: polling without it returns the same UID for as long as the card stays
        (Seeed-Studio/PN532 issue #38), which is what presence detection wants.
        """
        self._release = release
        self._senders: dict[State, Callable[[], bytes]] = {
            State.SAM_ACK: lambda: commands.WAKEUP + commands.sam_configuration(),
            State.FIRMWARE_ACK: commands.get_firmware_version,
            State.RETRIES_ACK: lambda: commands.rf_configuration_max_retries(
                mx_rty_passive_activation=mx_rty_passive_activation
            ),
            State.POLL_ACK: commands.in_list_passive_target,
            State.RELEASE_ACK: commands.in_release,
        }
        self._state = State.OFFLINE
        self._last_sent = b""
        self._firmware: FirmwareVersion | None = None
        self.stray_frames = 0

    @property
    def state(self) -> State:
        return self._state

    @property
    def firmware(self) -> FirmwareVersion | None:
        return self._firmware

    @property
    def timeout_s(self) -> float | None:
        """How long to wait for the next frame; None when nothing is awaited."""
        if self._state in _STEPS:
            return ACK_TIMEOUT_S
        return RESPONSE_TIMEOUT_S if self._state in AWAITED else None

    def start(self) -> bytes:
        """(Re)initialise the chip from any state; returns wake-up and SAMConfiguration."""
        return self._caller(Input.START).send

    def poll(self) -> bytes:
        """Look for a card; only when IDLE. Returns InListPassiveTarget."""
        return self._caller(Input.POLL).send

    def timed_out(self) -> Reaction:
        """Nothing came within ``timeout_s``: abort the command (ACK) and go OFFLINE."""
        reaction = self._caller(Input.TIMEOUT)
        return Reaction(ACK_FRAME, reaction.events)

    def receive(self, frame: Pn532Frame) -> Reaction:
        match frame:
            case Ack():
                return self._wire(Input.ACK)
            case Nack():
                return self._wire(Input.NACK)
            case ErrorFrame():
                return self._wire(Input.ERROR)
            case InformationFrame():
                return self._response(frame)
            case _:
                assert_never(frame)

    def _response(self, frame: InformationFrame) -> Reaction:
        command = AWAITED.get(self._state)
        if command is None or frame.code != command.response_code:
            self.stray_frames += 1
            return Reaction()
        try:
            event = self._interpret(command, frame.params)
        except FrameError:
            return self._wire(Input.MALFORMED)
        if isinstance(event, CardsPresent) and self._release:
            return self._wire(Input.CARD, event)
        return self._wire(Input.RESPONSE, event)

    def _interpret(self, command: Command, params: bytes) -> PollerEvent | None:
        if command is Command.GET_FIRMWARE_VERSION:
            self._firmware = FirmwareVersion.from_params(params)
        elif command is Command.IN_LIST_PASSIVE_TARGET:
            targets = InListPassiveTargetResponse.from_params(params).targets
            return CardsPresent(targets) if targets else NoCard()
        return None

    def _caller(self, event: Input) -> Reaction:
        if event not in TRANSITIONS[self._state]:
            raise Pn532StateError(f"cannot {event.value} while {self._state.value}")
        return self._fire(event)

    def _wire(self, event: Input, found: PollerEvent | None = None) -> Reaction:
        if event not in TRANSITIONS[self._state]:
            self.stray_frames += 1
            return Reaction()
        reaction = self._fire(event)
        return Reaction(reaction.send, (found, *reaction.events) if found else reaction.events)

    def _fire(self, event: Input) -> Reaction:
        old, new = self._state, TRANSITIONS[self._state][event]
        self._state = new
        if event is Input.NACK:
            return Reaction(self._last_sent)
        send = self._senders[new]() if new in self._senders else b""
        if send:
            self._last_sent = send
        return Reaction(send, self._events_on_entry(old, new, event))

    def _events_on_entry(self, old: State, new: State, event: Input) -> tuple[PollerEvent, ...]:
        if new is State.OFFLINE:
            return (ChipLost(event.value),)
        if new is State.IDLE and old in (State.RETRIES_ACK, State.RETRIES_RESPONSE):
            assert self._firmware is not None
            return (Configured(self._firmware),)
        return ()
