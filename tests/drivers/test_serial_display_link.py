"""DisplayLink: stop-and-wait, retransmission and duplicate suppression, with time injected."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.errors import EncodeError
from drivers.sentinel import NEED_DATA
from drivers.serial_display import (
    Ack,
    Clear,
    Command,
    CommandDecoder,
    Delivered,
    DisplayLink,
    ErrorCode,
    Failed,
    Frame,
    Nak,
    Ping,
    Received,
    Reply,
    SetBrightness,
    ShowText,
    encode_reply,
)


class Peer:
    """A display reduced to the protocol rules of spec section 4, without a port."""

    def __init__(self) -> None:
        self.decoder = CommandDecoder()
        self.executed: list[Command] = []
        self._last: tuple[Received, Reply] | None = None

    def feed(self, data: bytes) -> bytes:
        self.decoder.receive_data(data)
        out = b""
        while (frame := self.decoder.next_frame()) is not NEED_DATA:
            if isinstance(frame, Received):
                if self._last is None or self._last[0] != frame:
                    self.executed.append(frame.command)
                    self._last = (frame, Ack(frame.seq))
                out += encode_reply(self._last[1]).to_bytes()
            else:
                out += encode_reply(Nak(frame.seq, frame.code)).to_bytes()
        return out


def test_a_command_is_delivered_when_acked() -> None:
    link = DisplayLink()
    wire = link.send(ShowText(0, "Hi", 10), now=0.0)
    assert Frame.from_bytes(wire).seq == 0
    assert link.busy
    assert link.next_event() is NEED_DATA
    link.receive_data(encode_reply(Ack(0)).to_bytes())
    assert link.next_event() == Delivered(0, ShowText(0, "Hi", 10))
    assert not link.busy
    assert link.deadline is None


def test_sequence_numbers_increase_and_wrap() -> None:
    link = DisplayLink(first_seq=254)
    seqs = []
    for _ in range(3):
        seqs.append(Frame.from_bytes(link.send(Ping(), 0.0)).seq)
        link.receive_data(encode_reply(Ack(seqs[-1])).to_bytes())
        assert isinstance(link.next_event(), Delivered)
    assert seqs == [254, 255, 0]


def test_a_second_send_while_busy_is_refused() -> None:
    link = DisplayLink()
    link.send(Ping(), 0.0)
    with pytest.raises(EncodeError):
        link.send(Ping(), 0.0)


def test_retransmits_the_same_bytes_then_fails() -> None:
    link = DisplayLink(ack_timeout_s=0.25, max_retries=3)
    wire = link.send(Clear(), now=10.0)
    assert link.retransmission(10.2) == b""  # not due yet
    assert [link.retransmission(t) for t in (10.25, 10.5, 10.75)] == [wire] * 3
    assert link.next_event() is NEED_DATA
    assert link.retransmission(11.0) == b""
    assert link.next_event() == Failed(0, Clear(), None)
    assert not link.busy


def test_nak_fails_with_its_code_and_stale_replies_are_ignored() -> None:
    link = DisplayLink(first_seq=5)
    link.send(SetBrightness(40), 0.0)
    link.receive_data(encode_reply(Ack(4)).to_bytes())
    link.receive_data(encode_reply(Nak(5, ErrorCode.BUSY)).to_bytes())
    assert link.next_event() == Failed(5, SetBrightness(40), ErrorCode.BUSY)
    assert link.stale_replies == 1


def test_corrupted_ack_is_dropped_and_the_retransmission_is_not_executed_twice() -> None:
    link, peer = DisplayLink(), Peer()
    reply = bytearray(peer.feed(link.send(ShowText(1, "Sale"), 0.0)))
    reply[-1] ^= 0x01
    link.receive_data(bytes(reply))
    assert link.next_event() is NEED_DATA
    assert link.decoder.stats.bad_checksum == 1
    link.receive_data(peer.feed(link.retransmission(1.0)))
    assert link.next_event() == Delivered(0, ShowText(1, "Sale"))
    assert peer.executed == [ShowText(1, "Sale")]


commands = st.one_of(
    st.just(Ping()),
    st.builds(ShowText, line=st.integers(0, 3), text=st.text(max_size=20)),
    st.builds(Clear, line=st.integers(0, 3)),
    st.builds(SetBrightness, percent=st.integers(0, 100)),
)


@settings(max_examples=60)
@given(st.lists(commands, min_size=1, max_size=12), st.integers(0, 2**32 - 1))
def test_over_a_lossy_link_every_delivered_command_ran_exactly_once(
    cmds: list[Command], seed: int
) -> None:
    rng = random.Random(seed)

    def lossy(data: bytes) -> bytes:
        roll = rng.random()
        if roll < 0.2:
            return b""  # lost
        if roll < 0.3 and data:
            damaged = bytearray(data)
            damaged[rng.randrange(len(damaged))] ^= 1 << rng.randrange(8)
            return bytes(damaged)
        return data

    link, peer, now = DisplayLink(max_retries=6), Peer(), 0.0
    outcomes: list[Delivered | Failed] = []
    for command in cmds:
        link.receive_data(lossy(peer.feed(lossy(link.send(command, now)))))
        while (event := link.next_event()) is NEED_DATA:
            now += link.ack_timeout_s
            link.receive_data(lossy(peer.feed(lossy(link.retransmission(now)))))
        outcomes.append(event)
    delivered = [e.command for e in outcomes if isinstance(e, Delivered)]
    assert [e.command for e in outcomes] == cmds
    # Each delivered command ran once; a failed one may or may not have run (its ACKs were lost).
    assert all(peer.executed.count(c) >= delivered.count(c) for c in delivered)
    assert len(peer.executed) <= len(cmds)
