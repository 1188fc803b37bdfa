from __future__ import annotations

import asyncio
import errno
import os
from pathlib import Path

import pytest
import serial
from sim_far_end import FarEnd

from firmware_sim.pty import Chunking, Delivery, PortClosedError, SimPort

pytestmark = pytest.mark.timeout(10)


async def test_path_is_a_symlink_to_a_raw_pty(tmp_path: Path, far_ends: list[FarEnd]) -> None:
    async with SimPort(tmp_path, "door") as port:
        assert (tmp_path / "door").is_symlink()
        assert os.path.realpath(port.path) == port.device
        far = FarEnd(port.path)
        far_ends.append(far)
        # Bytes that a cooked tty would mangle (CR, ^C, ^D, XON/XOFF) cross unchanged both ways.
        payload = bytes(range(256))
        assert await port.write(payload)
        assert await far.read_exactly(256) == payload
        far.write(payload)
        got = bytearray()
        while len(got) < 256:
            got += await asyncio.wait_for(port.read(), 2)
        assert bytes(got) == payload
    assert not (tmp_path / "door").exists()


@pytest.mark.parametrize("chunking", list(Chunking))
async def test_chunking_delivers_every_byte_in_order(
    tmp_path: Path, far_ends: list[FarEnd], chunking: Chunking
) -> None:
    async with SimPort(tmp_path, "door", seed=1) as port:
        # The gap is long enough for each chunk to arrive in a read of its own.
        port.delivery = Delivery(chunking, max_chunk=5, gap_s=0.03)
        far = FarEnd(port.path)
        far_ends.append(far)
        payload = os.urandom(16)
        writer = asyncio.create_task(port.write(payload))
        assert await far.read_exactly(16) == payload
        assert await writer
        sizes = [len(r) for r in far.reads]
        match chunking:
            case Chunking.WHOLE:
                assert sizes == [16]
            case Chunking.BYTEWISE:
                assert sizes == [1] * 16
            case Chunking.RANDOM:
                assert 1 < len(sizes) < 16
                assert max(sizes) <= 5


async def test_stall_holds_output(tmp_path: Path, far_ends: list[FarEnd]) -> None:
    async with SimPort(tmp_path, "door") as port:
        far = FarEnd(port.path)
        far_ends.append(far)
        loop = asyncio.get_running_loop()
        port.stall(0.3)
        started = loop.time()
        writer = asyncio.create_task(port.write(b"late"))
        with pytest.raises(TimeoutError):
            await far.read_some(timeout=0.15)
        assert await far.read_exactly(4) == b"late"
        assert loop.time() - started >= 0.29
        assert await writer


async def test_hang_up_breaks_the_old_fd_and_reconnect_replugs(tmp_path: Path) -> None:
    async with SimPort(tmp_path, "door") as port:
        old_device = port.device
        daemon = serial.Serial(str(port.path), 115200, timeout=0.5)
        try:
            port.hang_up()
            assert not port.is_up
            with pytest.raises(serial.SerialException):
                daemon.read(1)  # pyserial sees readiness with no data: the device went away
            with pytest.raises(serial.SerialException) as err:
                daemon.write(b"x")
            assert isinstance(err.value.__context__, OSError)
            assert err.value.__context__.errno == errno.EIO
        finally:
            daemon.close()
        port.reconnect()
        assert port.generation == 1
        assert port.path.is_symlink()
        # The kernel may hand the same /dev/pts number back, so compare behaviour, not names.
        daemon = serial.Serial(str(port.path), 115200, timeout=1)
        try:
            assert await port.write(b"again")
            assert daemon.read(5) == b"again"
        finally:
            daemon.close()
        assert old_device.startswith("/dev/pts/")


async def test_write_after_hang_up_reports_loss(tmp_path: Path) -> None:
    async with SimPort(tmp_path, "door") as port:
        port.hang_up()
        assert not await port.write(b"into the void")


async def test_a_closed_port_stays_closed(tmp_path: Path) -> None:
    port = SimPort(tmp_path, "door")
    port.open()
    port.close()
    port.reconnect()
    assert not port.is_up
    assert not port.path.exists()


async def test_read_raises_once_closed(tmp_path: Path) -> None:
    port = SimPort(tmp_path, "door")
    port.open()
    reader = asyncio.create_task(port.read())
    await asyncio.sleep(0.01)
    port.close()
    with pytest.raises(PortClosedError):
        await reader
