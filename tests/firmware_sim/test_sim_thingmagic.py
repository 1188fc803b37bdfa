"""The simulated M6e Nano against the driver's own encoders and decoder, over real ptys."""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sim_tm_host import Host

from drivers.thingmagic import commands as cmd
from drivers.thingmagic import status
from drivers.thingmagic.frames import Request, Response
from drivers.thingmagic.records import (
    KeepAlive,
    ReaderWarning,
    ReadingStarted,
    ReadingStopped,
    TagRead,
    parse_stream_message,
    parse_tag_buffer,
)
from firmware_sim.faults import Faults
from firmware_sim.pty import Chunking, SimPort
from firmware_sim.scenario import Scenario, ScenarioClock, Subject, Visit
from firmware_sim.thingmagic import SimTiming, ThingMagicSim
from firmware_sim.thingmagic_module import ModuleState
from firmware_sim.thingmagic_reads import parse_start_read
from firmware_sim.traffic import Antenna, TrafficModel

pytestmark = pytest.mark.timeout(20)

H = bytes.fromhex
CUSTOMER = "C0FFEE000000000000000001"
ITEM_A = "3074257BF7194E4000001A85"
ITEM_B = "3074257BF7194E4000001A86"
# Hand-made truth, so that who is where at which second is obvious: the clock starts at t=10.
SHOP = Scenario(
    zones=("entrance", "shelf-a"),
    subjects=(Subject(CUSTOMER, "customer"), Subject(ITEM_A, "item"), Subject(ITEM_B, "item")),
    visits=(
        Visit(CUSTOMER, "entrance", 5.0, 100.0),
        Visit(ITEM_A, "shelf-a", 0.0, 100.0),
        Visit(ITEM_B, "shelf-a", 0.0, 9.0),  # picked up before the test's clock starts
    ),
    duration=100.0,
)
ANTENNAS = (Antenna("door", 1, "entrance"), Antenna("door", 2, "shelf-a"))
CYCLE_MS = 200


@dataclass
class Rig:
    port: SimPort
    sim: ThingMagicSim
    host: Host

    async def start_reading(self) -> None:
        request = cmd.start_continuous_read(search_timeout_ms=CYCLE_MS)
        ack = await self.host.command(request)
        assert isinstance(parse_stream_message(ack), ReadingStarted)

    async def stop_reading(self) -> None:
        self.host.far.write(cmd.stop_continuous_read().to_bytes())
        await self.host.until(lambda f: f.opcode == cmd.OPCODE_MULTI_PROTOCOL_TAG_OP)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with SimPort(tmp_path, "door", seed=1) as port:
        sim = ThingMagicSim(
            port,
            SHOP,
            ANTENNAS,
            model=TrafficModel(bleed_rate_hz=0.0),
            seed=3,
            clock=ScenarioClock.starting_at(10.0),
            timing=SimTiming(stop_latency_s=0.15),
        )
        host = Host(port.path)
        async with asyncio.TaskGroup() as tg:
            runner = tg.create_task(sim.run())
            yield Rig(port, sim, host)
            host.close()
            port.close()
        assert runner.done()


# Request -> reply pairs from the SparkFun M6e Nano logs (docs/drivers/thingmagic.md 1.7 and the
# log files named), each compared byte for byte.
CAPTURED = [
    (
        "FF 00 03 1D 0C",
        "FF 14 03 00 00 14 12 08 00 30 00 00 02 20 15 03 10 01 03 01 47 00 00 00 10 EB FF",
    ),
    ("FF 00 0C 1D 03", "FF 01 0C 00 00 52 63 03"),
    ("FF 00 68 1D 67", "FF 01 68 00 00 00 A4 BF"),
    ("FF 00 63 1D 6C", "FF 02 63 00 00 00 05 21 46"),
    ("FF 01 62 01 BE BC", "FF 07 62 00 00 01 0A 8C 0A 8C 00 00 54 B4"),
    ("FF 01 62 00 BE BD", "FF 03 62 00 00 00 0A 8C A1 2A"),
    ("FF 02 92 0A 8C 4B D5", "FF 00 92 00 00 27 3B"),
    ("FF 01 97 0D 4B B0", "FF 00 97 00 00 77 9E"),
    ("FF 02 93 00 05 51 7D", "FF 00 93 00 00 37 1A"),
    ("FF 03 91 02 01 01 42 C5", "FF 00 91 00 00 17 58"),
    ("FF 04 06 00 01 C2 00 A4 60", "FF 00 06 00 00 E4 06"),
    ("FF 03 9A 01 0C 00 A3 5D", "FF 00 9A 00 00 A6 33"),
    ("FF 02 6A 01 0C 2E 42", "FF 03 6A 00 00 01 0C 01 32 45"),
    ("FF 02 6B 05 01 3A 6E", "FF 04 6B 00 00 05 01 01 00 2C 68"),
    ("FF 00 71 1D 7E", "FF 09 71 00 00 0D 04 05 06 08 09 0B 0C FF A4 C7"),
    ("FF 00 70 1D 7F", "FF 02 70 00 00 00 05 3B 75"),
    ("FF 01 61 05 BD B8", "FF 03 61 00 00 05 01 00 61 DF"),
    ("FF 00 2A 1D 25", "FF 00 2A 00 00 01 E8"),
    ("FF 03 2F 00 00 02 5E 86", "FF 01 2F 00 00 02 30 E6"),  # stop while idle: acked at once
]


@pytest.mark.parametrize(("sent", "received"), CAPTURED)
async def test_answers_like_the_logged_module(rig: Rig, sent: str, received: str) -> None:
    rig.host.far.write(H(sent))
    reply = await rig.host.until(lambda f: f.opcode == H(sent)[2])
    assert reply.to_bytes() == H(received)
    assert rig.host.decoder.stats.discarded_bytes == 0


async def test_version_bytes_are_the_capture_exactly(rig: Rig) -> None:
    await rig.host.command(cmd.get_version())
    assert bytes(rig.host.raw) == H(
        "FF 14 03 00 00 14 12 08 00 30 00 00 02 20 15 03 10 01 03 01 47 00 00 00 10 EB FF"
    )


async def test_unknown_opcode_gets_invalid_opcode(rig: Rig) -> None:
    reply = await rig.host.command(Request(0x55, b"\x01\x02"))
    assert reply == Response(0x55, status.INVALID_OPCODE)
    assert rig.sim.stats.unknown_opcodes == 1


async def test_settings_are_validated_and_remembered(rig: Rig) -> None:
    too_loud = await rig.host.command(cmd.set_read_tx_power(3000))
    assert too_loud.status == status.MSG_POWER_TOO_HIGH
    assert (await rig.host.command(cmd.set_region(0x02))).status == status.INVALID_REGION
    assert (await rig.host.command(cmd.set_region(cmd.REGION_NZ))).status == status.SUCCESS
    assert (await rig.host.command(cmd.get_region())).data == bytes((cmd.REGION_NZ,))
    bad_port = await rig.host.command(cmd.set_antenna_plan([(3, 3)]))
    assert bad_port.status == status.INVALID_ANTENNA_CONFIG
    temperature = await rig.host.command(cmd.get_temperature())
    assert cmd.parse_temperature(temperature) == rig.sim.state.temperature_c


def stream_messages(host: Host) -> list[object]:
    return [
        parse_stream_message(f)
        for f in host.frames
        if f.opcode in (cmd.OPCODE_READ_TAG_ID_MULTIPLE, cmd.OPCODE_MULTI_PROTOCOL_TAG_OP)
    ]


def is_keepalive(frame: Response) -> bool:
    return frame.opcode == cmd.OPCODE_READ_TAG_ID_MULTIPLE and frame.status == status.NO_TAGS_FOUND


async def test_streamed_reads_match_the_scenario(rig: Rig) -> None:
    await rig.start_reading()
    await rig.host.until_count(is_keepalive, 5)
    messages = stream_messages(rig.host)
    reads = [m for m in messages if isinstance(m, TagRead)]
    zone_of_port = {a.port: a.zone for a in ANTENNAS}
    present = SHOP.present_at(10.5)
    assert {(r.epc.hex().upper(), zone_of_port[r.antenna]) for r in reads} == set(present.items())
    # Every read of a cycle goes out before its keep-alive: 5 cycles of 0.2 s, two tags in the
    # field at 25 reads/s each, on a jittered rhythm.
    assert 45 <= len(reads) <= 55
    assert all(0 <= (r.timestamp_ms or 0) < CYCLE_MS for r in reads)
    assert all(r.rssi_dbm is not None and -75 < r.rssi_dbm < -30 for r in reads)
    assert all(r.frequency_khz and 917_400 <= r.frequency_khz <= 927_200 for r in reads)
    assert rig.host.decoder.stats.discarded_bytes == 0


async def test_antenna_plan_limits_the_ports_read(rig: Rig) -> None:
    await rig.host.command(cmd.set_antenna_plan([(1, 1)]))
    await rig.start_reading()
    await rig.host.until_count(is_keepalive, 2)
    reads = [m for m in stream_messages(rig.host) if isinstance(m, TagRead)]
    assert reads
    assert {r.antenna for r in reads} == {1}


async def test_stop_sequence(rig: Rig) -> None:
    await rig.start_reading()
    await rig.host.pump(0.3)
    await rig.stop_reading()
    await rig.host.pump(0.4)  # nothing may follow the ack
    tail = stream_messages(rig.host)[-2:]
    assert isinstance(tail[0], KeepAlive)
    assert isinstance(tail[1], ReadingStopped)
    assert rig.host.frames[-1].to_bytes() == H("FF 01 2F 00 00 02 30 E6")
    assert not rig.sim.reading


async def run_faulty(rig: Rig, faults: Faults, seconds: float = 1.0) -> None:
    await rig.start_reading()
    rig.sim.faults = faults
    await rig.host.pump(seconds)
    rig.sim.faults = Faults()
    # Clean traffic after the faults: a broken frame's LEN can hold the decoder for up to 255
    # bytes, which the short stop sequence alone would not supply.
    await rig.host.pump(0.4)
    await rig.stop_reading()


async def test_garbage_is_counted_and_no_good_frame_lost(rig: Rig) -> None:
    await run_faulty(rig, Faults(garbage_rate=0.5, garbage_len=(1, 20)))
    counts, stats = rig.sim.mangler.counts, rig.host.decoder.stats
    assert counts.garbage_bytes > 100
    assert stats.discarded_bytes == counts.garbage_bytes
    assert stats.frames == counts.frames


async def test_corrupted_crcs_are_rejected_and_neighbours_survive(rig: Rig) -> None:
    await run_faulty(rig, Faults(corrupt_rate=0.2))
    counts, stats = rig.sim.mangler.counts, rig.host.decoder.stats
    assert counts.corrupted_frames > 3
    assert stats.bad_checksum >= counts.corrupted_frames
    assert stats.frames == counts.frames
    assert stats.discarded_bytes == counts.corrupted_bytes


async def test_byte_at_a_time_delivery(rig: Rig) -> None:
    await rig.start_reading()
    await rig.host.pump(0.3)
    mark = len(rig.host.far.reads)
    rig.sim.faults = Faults(chunking=Chunking.BYTEWISE)
    await rig.host.pump(0.5)
    sizes = sorted(len(r) for r in rig.host.far.reads[mark + 2 :])  # skip reads in flight
    assert len(sizes) > 20
    # A tag record is 47 bytes; the host's loop wakes every few bytes, so it sees it in pieces.
    assert sizes[len(sizes) // 2] < 10
    rig.sim.faults = Faults()
    await rig.host.pump(0.4)
    await rig.stop_reading()
    assert rig.host.decoder.stats.frames == rig.sim.mangler.counts.frames
    assert rig.host.decoder.stats.discarded_bytes == 0


async def test_stall_delays_output(rig: Rig) -> None:
    await rig.start_reading()
    await rig.host.until_count(is_keepalive, 1)
    loop = asyncio.get_running_loop()
    rig.sim.stall(0.6)
    stalled = loop.time()
    await rig.host.pump(0.05)  # what was already written before the stall
    before = len(rig.host.frames)
    await rig.host.until_count(is_keepalive, 1)
    assert loop.time() - stalled >= 0.55
    reads = [m for m in stream_messages(rig.host)[before:] if isinstance(m, TagRead)]
    assert len(reads) > 5  # the backlog arrives in one go after the stall


async def test_high_return_loss_warning(rig: Rig) -> None:
    await rig.start_reading()
    rig.sim.faults = Faults(return_loss_rate=1.0)
    frame = await rig.host.until(lambda f: f.status == status.HIGH_RETURN_LOSS)
    assert parse_stream_message(frame) == ReaderWarning(status.HIGH_RETURN_LOSS)
    assert frame.to_bytes()[:5] == H("FF 00 22 05 05")
    count = len(rig.host.frames)
    await rig.host.until_count(lambda f: f.status == status.HIGH_RETURN_LOSS, 2)
    assert not any(is_keepalive(f) for f in rig.host.frames[count:])  # warnings take their slot


async def test_unexpected_boot_frame_resets_the_module(rig: Rig) -> None:
    await rig.host.command(cmd.set_region(cmd.REGION_NZ))
    await rig.start_reading()
    await rig.host.pump(0.2)
    await rig.sim.send_boot_frame()
    boot = await rig.host.until(lambda f: f.opcode == cmd.OPCODE_BOOT_FIRMWARE)
    assert boot.data[4] == 0x30  # the hardware byte of an M6e Nano
    with pytest.raises(Exception, match="rebooted"):
        cmd.check_response(boot, cmd.OPCODE_VERSION)
    count = len(rig.host.frames)
    await rig.host.pump(0.4)
    assert not any(f.opcode == cmd.OPCODE_READ_TAG_ID_MULTIPLE for f in rig.host.frames[count:])
    assert (await rig.host.command(cmd.get_region())).data == bytes((cmd.REGION_NA2,))


async def test_hang_up_and_reconnect(rig: Rig) -> None:
    await rig.start_reading()
    await rig.host.pump(0.2)
    old = rig.host
    hang_up = asyncio.create_task(rig.sim.hang_up(down_s=0.2))
    await asyncio.sleep(0.05)
    assert os.read(old.far.fd, 4096) == b""  # end of file: the "USB device" is gone
    with pytest.raises(OSError, match="Input/output error") as err:
        os.write(old.far.fd, cmd.get_version().to_bytes())
    assert err.value.errno == errno.EIO
    await hang_up
    assert rig.port.path.is_symlink()
    fresh = Host(rig.port.path)
    try:
        reply = await fresh.command(cmd.get_version())
        assert reply.data[4] == 0x30
        assert not rig.sim.reading  # power-cycled: nothing streams until told to
    finally:
        fresh.close()


async def test_timed_read_fills_the_tag_buffer(rig: Rig) -> None:
    reply = await rig.host.command(cmd.read_tag_multiple(300))
    assert reply.status == status.SUCCESS
    assert int.from_bytes(reply.data[-4:], "big") == 2
    records: list[TagRead] = []
    while len(records) < 2:
        records += parse_tag_buffer(await rig.host.command(cmd.get_tag_buffer()))
    assert {r.epc.hex().upper() for r in records} == {CUSTOMER, ITEM_A}
    assert all(5 <= r.read_count <= 10 for r in records)  # ~25/s for 0.3 s, folded
    empty = await rig.host.command(cmd.get_tag_buffer())
    assert empty.status == status.TAG_ID_BUFFER_NOT_ENOUGH_TAGS_AVAILABLE


@given(opcode=st.integers(0, 255), data=st.binary(max_size=40))
def test_any_command_gets_a_reply_with_its_opcode(opcode: int, data: bytes) -> None:
    state = ModuleState(ports=(1, 2))
    reply = state.answer(Request(opcode, data))
    assert reply.opcode == opcode
    assert Response.from_bytes(reply.to_bytes()) == reply


@given(data=st.binary(max_size=40))
def test_start_parser_takes_any_bytes(data: bytes) -> None:
    parse_start_read(data)


def test_start_parser_reads_the_driver_command() -> None:
    plan = parse_start_read(cmd.start_continuous_read().data)
    assert plan is not None
    assert (plan.cycle_s, plan.search_flags, plan.metadata_flags) == (1.0, 0x001B, 0x01FF)
    duty = cmd.start_continuous_read(
        search_flags=0x001B | cmd.SEARCH_FLAG_DUTY_CYCLE_CONTROL, off_time_ms=250
    )
    assert replace(parse_start_read(duty.data) or plan, search_flags=0).off_s == 0.25
