"""A read buffer between paho and the broker's socket.

paho reads a packet in three or more ``recv`` calls (the command byte, the length bytes one at
a time, the rest), and its ``loop_read`` handles one packet per wake-up of the event loop; at
one event per message that was four system calls and one loop turn per event, most of the
consumer's time. Wrapped in ``ReadBuffer``, the socket is read 64 KiB at a time and paho is
served from memory; ``pending()`` tells aiomqtt's reader (which asks it of TLS sockets, whose
decrypted bytes the event loop cannot see) to keep calling ``loop_read`` while whole packets
are buffered, so one wake-up handles everything that has arrived.

One wake-up reads the socket once: when what it read is used up (a packet cut at its end),
the next ``recv`` says nothing has come, paho keeps the partial packet for the next wake-up,
and the event loop runs the rest of its work in between. Otherwise a broker that sends faster
than paho decodes (mosquitto 2.0.11 sends a resumed session's whole backlog, past the Receive
Maximum) keeps the reader going for seconds, with the writer unable to check, commit or
acknowledge anything until the socket is empty.
"""

from __future__ import annotations

import socket
import ssl
from typing import Final

import aiomqtt

CHUNK: Final = 64 * 1024


class ReadBuffer:
    """The socket paho sees: ``recv`` from a buffer, everything else passed through."""

    def __init__(self, sock: socket.socket | ssl.SSLSocket) -> None:
        self._sock = sock
        self._data = b""
        self._at = 0
        self._read = False  # the socket has been read in this wake-up

    def recv(self, size: int) -> bytes:
        if self._at >= len(self._data):
            if self._read and not self._inner_pending():
                # The kernel holds the rest, where the event loop sees it: the next wake-up.
                self._read = False
                raise BlockingIOError
            # Raises BlockingIOError (or ssl.SSLWantReadError) when nothing has come, as paho
            # expects; b"" is the end of the stream.
            data = self._sock.recv(max(size, CHUNK))
            self._read = True
            if len(data) <= size:
                return data
            self._data, self._at = data, 0
        out = self._data[self._at : self._at + size]
        self._at += len(out)
        return out

    def pending(self) -> int:
        """What is buffered here and, for TLS, decrypted and waiting in the ``SSLSocket``; 0
        ends the wake-up."""
        buffered = len(self._data) - self._at + self._inner_pending()
        if not buffered:
            self._read = False
        return buffered

    def _inner_pending(self) -> int:
        return self._sock.pending() if isinstance(self._sock, ssl.SSLSocket) else 0

    def send(self, data: bytes | bytearray | memoryview) -> int:
        return self._sock.send(data)

    def fileno(self) -> int:
        return self._sock.fileno()

    def setblocking(self, flag: bool) -> None:
        self._sock.setblocking(flag)

    def close(self) -> None:
        self._sock.close()


def install(client: aiomqtt.Client) -> None:
    """Wrap each socket ``client`` opens in a ``ReadBuffer``, before aiomqtt registers it with
    the event loop and before paho sends CONNECT. Call before ``async with client``."""
    paho = client._client
    opened = paho.on_socket_open
    assert opened is not None  # aiomqtt registers its reader here

    def buffered(paho_client: object, userdata: object, sock: object) -> None:
        wrapped = ReadBuffer(sock)  # type: ignore[arg-type]  # paho's SocketLike
        paho._sock = wrapped  # paho reads and writes through _sock
        opened(paho, userdata, wrapped)

    paho.on_socket_open = buffered
