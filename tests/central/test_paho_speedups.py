"""The consumer's changes under paho: the read buffer serves paho the socket's bytes in order
however paho asks for them (reading the socket once per wake-up of the event loop), the shared
property tables decode what paho's own do, and a batch's PUBACKs are the bytes paho's acks
would send."""

from __future__ import annotations

import importlib.util
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from central.pahoacks import ack_all
from central.pahotables import SharedTables
from central.readbuffer import CHUNK, ReadBuffer


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, ReadBuffer]]:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    yield theirs, ReadBuffer(ours)
    ours.close()
    theirs.close()


def test_bytes_come_in_order_in_any_sizes_and_pending_counts_the_buffered(
    pair: tuple[socket.socket, ReadBuffer],
) -> None:
    theirs, buffered = pair
    sent = bytes(range(256)) * 40  # 10,240 bytes
    theirs.sendall(sent)
    got = [buffered.recv(1), buffered.recv(1)]
    assert buffered.pending() == len(sent) - 2
    sizes = iter([3, 1, 700, 5000] * 10)
    while buffered.pending():
        got.append(buffered.recv(next(sizes)))
    assert b"".join(got) == sent
    with pytest.raises(BlockingIOError):
        buffered.recv(1)


def test_a_read_larger_than_what_is_buffered_returns_what_is_there(
    pair: tuple[socket.socket, ReadBuffer],
) -> None:
    theirs, buffered = pair
    theirs.sendall(b"\x30\x05hello")
    assert buffered.recv(1) == b"\x30"
    assert buffered.recv(CHUNK * 2) == b"\x05hello"
    assert buffered.pending() == 0  # aiomqtt asks after each packet: the wake-up ends
    theirs.close()
    assert buffered.recv(1) == b""  # the end of the stream, as from the socket


def test_one_wake_up_reads_the_socket_once(pair: tuple[socket.socket, ReadBuffer]) -> None:
    """Past what one read brought, the buffer says nothing has come (paho keeps the partial
    packet) until the next wake-up, which reads on; nothing is lost or reordered."""
    theirs, buffered = pair
    sent = bytes(range(256)) * (CHUNK // 128)  # two reads' worth
    theirs.sendall(sent)
    got = [buffered.recv(1)]
    got.append(buffered.recv(buffered.pending() + 10))  # the rest of the first read only
    assert len(b"".join(got)) <= CHUNK
    with pytest.raises(BlockingIOError):
        buffered.recv(7)
    assert buffered.pending() == 0
    while len(b"".join(got)) < len(sent):
        got.append(buffered.recv(7))
        buffered.pending()
    assert b"".join(got) == sent


def test_shared_tables_decode_as_paho_does() -> None:
    sent = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    sent.UserProperty = [("trace", "abc"), ("hop", "2")]
    sent.ContentType = "application/json"
    sent.MessageExpiryInterval = 60
    packed = sent.pack()  # type: ignore[no-untyped-call]
    theirs = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    theirs.unpack(packed)  # type: ignore[no-untyped-call]
    ours = SharedTables(PacketTypes.PUBLISH)
    ours.unpack(packed)  # type: ignore[no-untyped-call]
    assert ours.json() == theirs.json()  # type: ignore[no-untyped-call]
    assert ours.json()["UserProperty"] == [("trace", "abc"), ("hop", "2")]  # type: ignore[no-untyped-call]
    ours.unpack(Properties(PacketTypes.PUBLISH).pack())  # type: ignore[no-untyped-call]
    assert ours.isEmpty()  # type: ignore[no-untyped-call]


def test_the_shared_tables_go_in_only_where_paho_decodes_as_expected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """paho 2.2 decodes PUBLISH in ``paho.mqtt._packet``; 2.1 (our lowest) has no such module
    and the consumer must run on paho's own tables there rather than fail to start."""
    import sys  # noqa: PLC0415

    from central import pahotables  # noqa: PLC0415

    monkeypatch.setitem(sys.modules, "paho.mqtt._packet", None)  # import raises ImportError
    assert pahotables.install() is False
    monkeypatch.undo()
    if importlib.util.find_spec("paho.mqtt._packet") is None:  # paho 2.1, as installed here
        assert pahotables.install() is False
        return
    import paho.mqtt._packet as paho_packet  # noqa: PLC0415

    monkeypatch.setattr(paho_packet, "Properties", Properties)
    assert pahotables.install() is True
    assert paho_packet.Properties is SharedTables  # type: ignore[attr-defined]


@dataclass
class Received:
    mid: int
    qos: int


def queued(client: mqtt.Client) -> bytes:
    return b"".join(bytes(p["packet"]) for p in client._out_packet)


def test_a_batch_of_pubacks_is_what_pahos_acks_send() -> None:
    messages = [Received(1, 1), Received(2, 0), Received(300, 1), Received(65535, 1)]
    theirs, ours = (
        mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5) for _ in "ab"
    )
    for client in (theirs, ours):
        client.manual_ack_set(True)
    for message in messages:
        theirs.ack(message.mid, message.qos)
    ack_all(ours, messages)
    assert queued(ours) == queued(theirs) == bytes.fromhex("400200014002012c4002ffff")
    assert len(ours._out_packet) == 1  # one write
    ack_all(ours, [Received(5, 2)])  # QoS 2: paho's own PUBCOMP
    theirs.ack(5, 2)
    assert queued(ours)[-4:] == queued(theirs)[-4:] == bytes.fromhex("70020005")
