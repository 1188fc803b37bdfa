"""The PN532 poller's state table, tested the way python-hyper/h2 tests its state machines."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.pn532 import (
    PN532_V1_6,
    Ack,
    CardsPresent,
    ChipLost,
    Command,
    Configured,
    ErrorFrame,
    InformationFrame,
    InListPassiveTargetResponse,
    Nack,
    NoCard,
    Pn532CommandDecoder,
    Pn532Frame,
    Pn532Poller,
    Pn532StateError,
    Reaction,
    State,
    TypeATarget,
)
from drivers.pn532.poller import AWAITED, TRANSITIONS, Input

CARD = TypeATarget(tg=1, atqa=bytes.fromhex("00 04"), sak=0x08, uid=bytes.fromhex("B0 86 4D 25"))


def reply(command: Command, params: bytes = b"") -> InformationFrame:
    return InformationFrame(0xD5, command.response_code, params)


def replies(command: Command, card: bool = False) -> InformationFrame:
    if command is Command.GET_FIRMWARE_VERSION:
        return reply(command, PN532_V1_6.to_params())
    if command is Command.IN_LIST_PASSIVE_TARGET:
        return reply(command, InListPassiveTargetResponse((CARD,) if card else ()).to_params())
    return reply(command)


def sent_commands(wire: bytes) -> list[int]:
    decoder = Pn532CommandDecoder()
    decoder.receive_data(wire)
    return [f.code for f in decoder.frames() if isinstance(f, InformationFrame)]


def configured(poller: Pn532Poller) -> list[Reaction]:
    """Run the start-up exchange with a well-behaved chip."""
    poller.start()
    return configured_from_started(poller)


def test_start_up_sends_the_commands_in_order_and_reports_the_firmware() -> None:
    poller = Pn532Poller()
    wire = poller.start()
    assert wire.startswith(b"\x55\x55")
    for reaction in configured_from_started(poller):
        wire += reaction.send
    assert sent_commands(wire) == [0x14, 0x02, 0x32]
    assert poller.state is State.IDLE
    assert poller.firmware == PN532_V1_6
    assert poller.timeout_s is None


def configured_from_started(poller: Pn532Poller) -> list[Reaction]:
    reactions = []
    while poller.state is not State.IDLE:
        command = AWAITED[poller.state]
        reactions.append(poller.receive(Ack()))
        reactions.append(poller.receive(replies(command)))
    return reactions


def test_configured_event_comes_once_on_reaching_idle() -> None:
    events = [e for r in configured(Pn532Poller()) for e in r.events]
    assert events == [Configured(PN532_V1_6)]


@pytest.mark.parametrize(("card", "event"), [(True, CardsPresent((CARD,))), (False, NoCard())])
def test_poll_reports_the_card_or_its_absence(card: bool, event: object) -> None:
    poller = Pn532Poller()
    configured(poller)
    assert sent_commands(poller.poll()) == [0x4A]
    assert poller.state is State.POLL_ACK
    assert poller.receive(Ack()) == Reaction()
    assert poller.state is State.POLL_RESPONSE
    reaction = poller.receive(replies(Command.IN_LIST_PASSIVE_TARGET, card))
    assert reaction.events == (event,)
    assert poller.state is State.IDLE


def test_release_option_sends_in_release_after_a_card() -> None:
    poller = Pn532Poller(release=True)
    configured(poller)
    poller.poll()
    poller.receive(Ack())
    reaction = poller.receive(replies(Command.IN_LIST_PASSIVE_TARGET, card=True))
    assert reaction.events == (CardsPresent((CARD,)),)
    assert sent_commands(reaction.send) == [0x52]
    poller.receive(Ack())
    assert poller.receive(replies(Command.IN_RELEASE, b"\x00")).events == ()
    assert poller.state is State.IDLE


def test_nack_resends_the_last_command() -> None:
    poller = Pn532Poller()
    configured(poller)
    sent = poller.poll()
    assert poller.receive(Nack()).send == sent
    assert poller.state is State.POLL_ACK


def test_response_whose_ack_was_lost_is_accepted() -> None:
    poller = Pn532Poller()
    configured(poller)
    poller.poll()
    reaction = poller.receive(replies(Command.IN_LIST_PASSIVE_TARGET, card=True))
    assert reaction.events == (CardsPresent((CARD,)),)


@pytest.mark.parametrize(
    ("disturb", "reason"),
    [
        (lambda p: p.receive(ErrorFrame()), "error"),
        (lambda p: p.timed_out(), "timeout"),
        (lambda p: p.receive(reply(Command.IN_LIST_PASSIVE_TARGET, b"\x01\x01")), "malformed"),
    ],
)
def test_trouble_takes_the_poller_offline(
    disturb: Callable[[Pn532Poller], Reaction], reason: str
) -> None:
    poller = Pn532Poller()
    configured(poller)
    poller.poll()
    reaction = disturb(poller)
    assert reaction.events == (ChipLost(reason),)
    assert poller.state is State.OFFLINE
    assert poller.timeout_s is None
    assert sent_commands(poller.start()) == [0x14]


def test_timeout_aborts_the_pending_command_with_an_ack() -> None:
    poller = Pn532Poller()
    poller.start()
    assert poller.timed_out().send == bytes.fromhex("00 00 FF 00 FF 00")


def test_stray_frames_are_counted_and_ignored() -> None:
    poller = Pn532Poller()
    configured(poller)
    assert poller.receive(Ack()) == Reaction()
    assert poller.receive(replies(Command.IN_LIST_PASSIVE_TARGET, card=True)) == Reaction()
    poller.poll()
    assert poller.receive(reply(Command.GET_FIRMWARE_VERSION, b"1234")) == Reaction()
    assert poller.stray_frames == 3
    assert poller.state is State.POLL_ACK


def test_caller_misuse_raises_a_driver_error() -> None:
    poller = Pn532Poller()
    with pytest.raises(Pn532StateError):
        poller.poll()
    with pytest.raises(Pn532StateError):
        poller.timed_out()
    poller.start()
    with pytest.raises(Pn532StateError):
        poller.poll()


def test_timeouts_are_tighter_for_acks_than_for_responses() -> None:
    poller = Pn532Poller()
    poller.start()
    ack_wait = poller.timeout_s
    poller.receive(Ack())
    assert ack_wait is not None
    assert poller.timeout_s is not None
    assert ack_wait < poller.timeout_s


def test_every_state_is_reachable_from_offline() -> None:
    seen, frontier = {State.OFFLINE}, [State.OFFLINE]
    while frontier:
        for target in TRANSITIONS[frontier.pop()].values():
            if target not in seen:
                seen.add(target)
                frontier.append(target)
    assert seen == set(State)


def test_every_waiting_state_can_get_back_to_idle_or_offline() -> None:
    for state in AWAITED:
        assert {State.OFFLINE} <= set(TRANSITIONS[state].values())
        assert TRANSITIONS[state][Input.TIMEOUT] is State.OFFLINE


# --- h2-style: any sequence of inputs keeps the machine in a defined state ------------------------

WIRE_FRAMES: list[Pn532Frame] = [
    Ack(),
    Nack(),
    ErrorFrame(),
    *(replies(c) for c in Command),
    replies(Command.IN_LIST_PASSIVE_TARGET, card=True),
    reply(Command.IN_LIST_PASSIVE_TARGET, b"\x07"),
]


CALLS = {"start": Input.START, "poll": Input.POLL, "timed_out": Input.TIMEOUT}


@given(
    st.lists(st.one_of(st.sampled_from(WIRE_FRAMES), st.sampled_from(list(CALLS))), max_size=60),
    st.booleans(),
)
def test_any_input_sequence_follows_the_table(
    inputs: list[Pn532Frame | str], release: bool
) -> None:
    poller = Pn532Poller(release=release)
    for item in inputs:
        before = poller.state
        allowed = TRANSITIONS[before]
        if isinstance(item, str):
            try:
                getattr(poller, item)()
            except Pn532StateError:
                assert CALLS[item] not in allowed
                assert poller.state is before
                continue
            assert poller.state is allowed[CALLS[item]]
        else:
            reaction = poller.receive(item)
            assert poller.state is before or poller.state in allowed.values()
            if reaction.send:
                assert sent_commands(reaction.send), "a reaction sends whole command frames"
            if any(isinstance(e, ChipLost) for e in reaction.events):
                assert poller.state is State.OFFLINE
        assert (poller.timeout_s is None) == (poller.state not in AWAITED)
