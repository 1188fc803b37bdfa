"""Commands byte-exact against the frames SparkFun's library sent (docs/drivers/thingmagic.md
1.6-1.10).

Sources: SparkFun_Simultaneous_RFID_Tag_Reader_Library, "Example Communication Logs" at 60dabeb
(also tests/vectors/thingmagic_sparkfun_logs_all_frames.json) and SparkFun_UHF_RFID_Reader.cpp.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from drivers.errors import DeviceError, EncodeError
from drivers.thingmagic import commands as cmd
from drivers.thingmagic.frames import Request, Response
from drivers.thingmagic.version import TMR_SR_MODEL_M6E_NANO, VersionInfo

LOGGED_SENT = {
    frame["hex"]
    for frame in json.loads(
        (
            Path(__file__).parents[1] / "vectors" / "thingmagic_sparkfun_logs_all_frames.json"
        ).read_text()
    )
    if frame["dir"] == "Sending"
}

CAPTURED = [
    (cmd.get_version(), "FF 00 03 1D 0C"),
    (cmd.set_baud_rate(115_200), "FF 04 06 00 01 C2 00 A4 60"),
    (cmd.get_region(), "FF 00 67 1D 68"),
    (cmd.set_region(cmd.REGION_NA2), "FF 01 97 0D 4B B0"),
    (cmd.get_read_tx_power(), "FF 01 62 00 BE BD"),
    (cmd.get_read_tx_power(with_limits=True), "FF 01 62 01 BE BC"),
    (cmd.set_read_tx_power(2700), "FF 02 92 0A 8C 4B D5"),
    (cmd.set_read_tx_power(2000), "FF 02 92 07 D0 46 89"),
    (cmd.set_tag_protocol(cmd.TAG_PROTOCOL_GEN2), "FF 02 93 00 05 51 7D"),
    (cmd.set_antenna_plan([(1, 1)]), "FF 03 91 02 01 01 42 C5"),
    (cmd.set_reader_config(cmd.CONFIG_ENABLE_READ_FILTER, 0), "FF 03 9A 01 0C 00 A3 5D"),
    (cmd.set_reader_config(cmd.CONFIG_ENABLE_READ_FILTER, 1), "FF 03 9A 01 0C 01 A3 5C"),
    (
        cmd.start_continuous_read(),
        "FF 10 2F 00 00 01 22 00 00 05 07 22 10 00 1B 03 E8 01 FF DD 2B",
    ),
    (cmd.stop_continuous_read(), "FF 03 2F 00 00 02 5E 86"),
    (cmd.clear_tag_buffer(), "FF 00 2A 1D 25"),
    (cmd.read_tag_multiple(500), "FF 05 22 00 00 13 01 F4 2B 19"),
    (cmd.get_tag_buffer(0x01FF), "FF 03 29 01 FF 00 1B 03"),
]


@pytest.mark.parametrize(("request_", "captured"), CAPTURED, ids=lambda x: str(x)[:24])
def test_command_is_byte_exact(request_: Request, captured: str) -> None:
    assert request_.to_bytes().hex(" ").upper() == captured
    assert captured in LOGGED_SENT


def test_temperature_request_and_reply() -> None:
    # Not in the logs: opcode 0x72 with no data, reply msg[5] is signed degrees C.
    assert cmd.get_temperature() == Request(0x72)
    assert cmd.parse_temperature(Response(0x72, 0, b"\x1f")) == 31
    assert cmd.parse_temperature(Response(0x72, 0, b"\xfb")) == -5


def test_duty_cycle_needs_an_off_time() -> None:
    cycled = cmd.start_continuous_read(search_flags=0x041B, off_time_ms=250)
    assert cycled.data[-6:] == bytes.fromhex("03 E8 00 FA 01 FF")
    assert cycled.data[7] == 9  # PLEN grows by the two off-time bytes
    with pytest.raises(EncodeError):
        cmd.start_continuous_read(search_flags=0x041B)
    with pytest.raises(EncodeError):
        cmd.start_continuous_read(off_time_ms=250)


@pytest.mark.parametrize(
    "build",
    [
        lambda: cmd.set_baud_rate(-1),
        lambda: cmd.set_region(0x100),
        lambda: cmd.set_read_tx_power(70_000),
        lambda: cmd.set_antenna_plan([]),
        lambda: cmd.read_tag_multiple(0x10000),
    ],
)
def test_impossible_arguments(build: Callable[[], Request]) -> None:
    with pytest.raises(EncodeError):
        build()


def test_check_response() -> None:
    ok = Response(0x97, 0)
    assert cmd.check_response(ok, 0x97) is ok
    with pytest.raises(DeviceError, match="0x0423") as info:
        cmd.check_response(Response.from_bytes(bytes.fromhex("FF 00 28 04 23 25 89")), 0x28)
    assert info.value.status == 0x0423
    with pytest.raises(DeviceError, match="reboot"):
        cmd.check_response(Response(0x04, 0, bytes(20)), 0x97)
    with pytest.raises(DeviceError, match="0x22"):
        cmd.check_response(Response(0x22, 0x0400), 0x97)


def test_version_reply_round_trips() -> None:
    raw = bytes.fromhex(
        "FF 14 03 00 00 14 12 08 00 30 00 00 02 20 15 03 10 01 03 01 47 00 00 00 10 EB FF"
    )
    info = VersionInfo.from_response(Response.from_bytes(raw))
    assert info.model == TMR_SR_MODEL_M6E_NANO
    assert (info.firmware_date.isoformat(), info.firmware) == ("2015-03-10", "01.03.01.47")
    assert info.protocols == {cmd.TAG_PROTOCOL_GEN2}
    assert info.to_response().to_bytes() == raw
