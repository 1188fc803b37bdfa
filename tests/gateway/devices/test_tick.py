"""Streaming ports on the pipeline's tick, on real ptys: read at each tick while bytes stream,
back in the selector when they stop, failures handed to the session that owns the port."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty
from collections.abc import Iterator

import pytest

from drivers.errors import DeviceError, TransportError
from gateway.devices.tick import Tick
from tests import waiting

pytestmark = [pytest.mark.kernels, pytest.mark.timeout(20)]


@contextlib.contextmanager
def pty() -> Iterator[tuple[int, int]]:
    """(master, slave): the slave raw and non-blocking, as ``take_reading`` leaves a port."""
    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(slave, False)
    try:
        yield master, slave
    finally:
        for fd in (master, slave):
            with contextlib.suppress(OSError):
                os.close(fd)


class Consumer:
    """Records what it is handed; bytes starting with R hold reads."""

    def __init__(self) -> None:
        self.calls: list[tuple[bytes, float]] = []
        self.fail_with: Exception | None = None

    def __call__(self, data: bytes, span_s: float) -> bool:
        self.calls.append((data, span_s))
        if self.fail_with is not None:
            raise self.fail_with
        return data.startswith(b"R")

    @property
    def data(self) -> bytes:
        return b"".join(d for d, _ in self.calls)


async def test_a_parked_port_hands_bytes_over_as_they_come_and_stays_parked_for_keepalives() -> (
    None
):
    tick = Tick(0.05, wake=lambda: None)
    consumer = Consumer()
    with pty() as (master, slave), tick.attach(slave, "p", consumer) as port:
        os.write(master, b"K-keepalive")
        await waiting.until(lambda: consumer.data == b"K-keepalive")
        assert not port.ticking
        assert consumer.calls[0][1] == 0.0  # just arrived: nothing to spread


async def test_reads_make_a_port_tick_and_a_tick_reads_everything_since_the_last() -> None:
    wakes: list[int] = []
    tick = Tick(0.05, wake=lambda: wakes.append(1))
    consumer = Consumer()
    with pty() as (master, slave), tick.attach(slave, "p", consumer) as port:
        os.write(master, b"R1")
        await waiting.until(lambda: port.ticking)
        assert wakes == [1]  # the pipeline is asked for a run at the next tick
        for chunk in (b"R2", b"R3", b"R4"):  # chunks as a USB adapter hands them over
            os.write(master, chunk)
            await asyncio.sleep(0.01)
        assert consumer.data == b"R1"  # a ticking port is read by the tick, not per chunk
        tick.poll()
        assert consumer.data == b"R1R2R3R4"
        assert len(consumer.calls) == 2
        assert 0.02 < consumer.calls[1][1] < 5.0  # the span since the last read
        assert port.ticking
        tick.poll()  # nothing since: back to the selector
        assert not port.ticking
        os.write(master, b"R5")
        await waiting.until(lambda: consumer.data.endswith(b"R5"))


async def test_a_port_with_more_waiting_than_a_tick_takes_asks_for_the_next_at_once() -> None:
    tick = Tick(0.05, wake=lambda: None, read_max=1000)
    consumer = Consumer()
    with pty() as (master, slave), tick.attach(slave, "p", consumer) as port:
        port.unpark()
        os.write(master, b"R" + bytes(7999))
        await asyncio.sleep(0.05)
        polls = [tick.poll()]
        while polls[-1]:
            await asyncio.sleep(0.01)
            polls.append(tick.poll())
        assert len(consumer.data) == 8000
        assert len(polls) > 2  # 1,000 bytes a tick at most: the rest at the next, at once
        assert polls[0]


async def test_a_hang_up_ends_the_port_with_a_transport_error() -> None:
    tick = Tick(0.05, wake=lambda: None)
    with pty() as (master, slave), tick.attach(slave, "p", Consumer()) as port:
        os.close(master)
        with pytest.raises(TransportError, match="p: "):
            await asyncio.wait_for(port.watch(None), 5)


async def test_what_the_consumer_raises_ends_its_port_not_the_tick() -> None:
    tick = Tick(0.05, wake=lambda: None)
    bad, good = Consumer(), Consumer()
    bad.fail_with = DeviceError("the reader stopped reading on its own")
    with (
        pty() as (m1, s1),
        pty() as (m2, s2),
        tick.attach(s1, "bad", bad) as p1,
        tick.attach(s2, "good", good) as p2,
    ):
        p1.unpark()
        p2.unpark()
        os.write(m1, b"R1")
        os.write(m2, b"R2")
        await asyncio.sleep(0.05)
        tick.poll()  # does not raise
        with pytest.raises(DeviceError, match="stopped reading"):
            await asyncio.wait_for(p1.watch(None), 5)
        assert good.data == b"R2"
        assert p2.ticking
        assert p1.ended


async def test_silence_ends_the_watch() -> None:
    tick = Tick(0.05, wake=lambda: None)
    with (
        pty() as (_, slave),
        tick.attach(slave, "p", Consumer()) as port,
        pytest.raises(TimeoutError),
    ):
        await asyncio.wait_for(port.watch(0.2), 5)


async def test_bytes_keep_the_watch_going() -> None:
    tick = Tick(0.05, wake=lambda: None)
    consumer = Consumer()
    with pty() as (master, slave), tick.attach(slave, "p", consumer) as port:
        watch = asyncio.create_task(port.watch(0.3))
        for _ in range(8):
            os.write(master, b"K")
            await asyncio.sleep(0.1)
        assert not watch.done()
        watch.cancel()


async def test_a_tick_without_a_pipeline_drives_itself() -> None:
    tick = Tick(0.02)
    consumer = Consumer()
    with pty() as (master, slave), tick.attach(slave, "p", consumer):
        for i in range(5):
            os.write(master, b"R%d" % i)
            await asyncio.sleep(0.01)
        await waiting.until(lambda: consumer.data == b"R0R1R2R3R4")


def test_the_grid() -> None:
    tick = Tick(0.05)
    assert tick.at_or_after(1.0) == pytest.approx(1.0)
    assert tick.at_or_after(1.01) == pytest.approx(1.05)
    assert tick.at_or_after(1.0500001) == pytest.approx(1.1)
    with pytest.raises(ValueError, match="positive"):
        Tick(0.0)
