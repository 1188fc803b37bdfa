"""The settings side of a simulated M6e Nano: what it remembers and how it answers a command.

Pure: ``ModuleState.answer(request)`` returns the reply frame and updates the state; it knows
nothing of ports, clocks or reading. Continuous and timed reads need time and the traffic
model, so ``firmware_sim.thingmagic`` handles those opcodes itself and asks this table for the
rest.

Replies are byte-exact to the SparkFun M6e Nano logs where a capture exists
(docs/drivers/thingmagic.md 1.7, and the log frames quoted below). Where the logs show no error
case, the status chosen is the mercuryapi code whose name fits (``tmr_status.h``); those choices are
marked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Final

from drivers.thingmagic import commands as cmd
from drivers.thingmagic import status
from drivers.thingmagic.frames import Request, Response

# Captured from an M6e Nano (docs/drivers/thingmagic.md 1.7): bootloader 14 12 08 00, hardware
# 30 00 00 02, firmware 2015-03-10 version 01 03 01 47, GEN2 only.
VERSION_REPLY: Final = Response.from_bytes(
    bytes.fromhex(
        "FF 14 03 00 00 14 12 08 00 30 00 00 02 20 15 03 10 01 03 01 47 00 00 00 10 EB FF"
    )
)
# SparkFun log "1-Connect to serial port.txt": HW_VERSION, part number "400-0067-01 ".
HW_VERSION_REPLY: Final = Response.from_bytes(
    bytes.fromhex(
        "FF 37 10 00 00 00 7F 01 02 41 49 02 02 00 30 04 02 E0 DF 08 02 00 01 10 0B 34 30 30 2D"
        " 30 30 36 37 2D 30 31 20 02 30 42 40 12 31 37 31 35 30 30 36 37 37 30 31 30 33 37 33 31"
        " 34 37 A2 D8"
    )
)
# SparkFun log "2-Select region.txt": the NA2 hop table (0x65), 50 channels in hop order, kHz.
NA2_HOP_TABLE_KHZ: Final = (
    926000, 919600, 924800, 922600, 921600, 925200, 918400, 919200, 923600, 921800,
    923200, 920200, 919400, 921200, 926600, 926800, 920800, 924400, 923800, 921000,
    924600, 922000, 917800, 922800, 919000, 917400, 926400, 924000, 919800, 926200,
    925000, 918600, 918800, 923000, 918200, 927000, 925400, 922200, 922400, 917600,
    920400, 925800, 920600, 924200, 918000, 927200, 920000, 921400, 923400, 925600,
)  # fmt: skip
# ETSI EN 302 208 high-power channels, for the EU regions.
EU_HOP_TABLE_KHZ: Final = (865700, 866300, 866900, 867500)
# "FF 09 71 00 00 0D 04 05 06 08 09 0B 0C FF": what the logged Nano offered.
AVAILABLE_REGIONS: Final = bytes.fromhex("0D 04 05 06 08 09 0B 0C FF")
REGION_NONE: Final = 0x00
OPCODE_HW_VERSION: Final = 0x10
OPCODE_GET_ANTENNA_PORT: Final = 0x61
OPCODE_GET_WRITE_TX_POWER: Final = 0x64
OPCODE_GET_HOP_TABLE: Final = 0x65
OPCODE_GET_READER_OPTIONAL_PARAMS: Final = 0x6A
OPCODE_GET_PROTOCOL_PARAM: Final = 0x6B
OPCODE_GET_AVAILABLE_PROTOCOLS: Final = 0x70
OPCODE_GET_AVAILABLE_REGIONS: Final = 0x71
OPCODE_SET_WRITE_TX_POWER: Final = 0x94
OPCODE_SET_POWER_MODE: Final = 0x98
OPCODE_SET_PROTOCOL_PARAM: Final = 0x9B
NANO_MAX_POWER_CDBM: Final = 2700
CURRENT_PROGRAM_APP: Final = 0x52  # "FF 01 0C 00 00 52 63 03"
# mercuryapi's baud probe list (serial_reader.c TMR_SR_cmdProbeBaudRate)
BAUD_RATES: Final = frozenset({9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600})
READER_CONFIG_OPTION: Final = 0x01
ANTENNA_OPTION_SEARCH_LIST: Final = 0x02


def _default_reader_config() -> dict[int, bytes]:
    # Values read back from the logged Nano: "FF 03 6A 00 00 01 0C 01 ..." (read filter on),
    # "... 01 0E 00" (transport), "... 01 12 00 00" (product group), "... 01 0D 00 00 00 00".
    return {0x0C: b"\x01", 0x0E: b"\x00", 0x12: b"\x00\x00", 0x0D: b"\x00\x00\x00\x00"}


def _default_gen2_params() -> dict[int, bytes]:
    # Read back from the logged Nano (0x6B): session 0, target 01 00, M 02, BLF 0, Tari 0, Q 0.
    return {0x00: b"\x00", 0x01: b"\x01\x00", 0x02: b"\x02", 0x10: b"\x00", 0x11: b"\x00",
            0x12: b"\x00"}  # fmt: skip


@dataclass(slots=True)
class ModuleState:
    """Settings a module keeps between commands; a reboot (``reset``) restores the defaults."""

    ports: tuple[int, ...] = (1,)  # physical antenna ports fitted
    region: int = cmd.REGION_NA2
    protocol: int = cmd.TAG_PROTOCOL_GEN2
    read_power_cdbm: int = NANO_MAX_POWER_CDBM
    write_power_cdbm: int = NANO_MAX_POWER_CDBM
    baud: int = 115200
    power_mode: int = 0
    temperature_c: int = 33
    antenna_plan: tuple[int, ...] = ()  # TX ports in the search list; () = every fitted port
    reader_config: dict[int, bytes] = field(default_factory=_default_reader_config)
    gen2_params: dict[int, bytes] = field(default_factory=_default_gen2_params)

    def reset(self) -> None:
        fresh = ModuleState(self.ports)
        for f in fields(self):
            setattr(self, f.name, getattr(fresh, f.name))

    @property
    def active_ports(self) -> tuple[int, ...]:
        return self.antenna_plan or self.ports

    @property
    def hop_table_khz(self) -> tuple[int, ...]:
        eu = (cmd.REGION_EU, cmd.REGION_EU2, cmd.REGION_EU3)
        return EU_HOP_TABLE_KHZ if self.region in eu else NA2_HOP_TABLE_KHZ

    def answer(self, request: Request) -> Response:
        handler = _HANDLERS.get(request.opcode)
        if handler is None:
            # What the module does with an opcode it does not know (tmr_status.h INVALID_OPCODE);
            # BOOT_FIRMWARE lands here too, as on a module already running its application.
            return Response(request.opcode, status.INVALID_OPCODE)
        return handler(self, request)


def _ok(request: Request, data: bytes = b"") -> Response:
    return Response(request.opcode, status.SUCCESS, data)


def _fail(request: Request, code: int) -> Response:
    return Response(request.opcode, code)


def _u16(value: int) -> bytes:
    return value.to_bytes(2, "big")


def _get_power(value: int, request: Request) -> Response:
    # "FF 01 62 00" -> "00 0A 8C"; "FF 01 62 01" -> "01 0A 8C 0A 8C 00 00" (current, max, min)
    if request.data[:1] == b"\x01":
        return _ok(request, b"\x01" + _u16(value) + _u16(NANO_MAX_POWER_CDBM) + _u16(0))
    return _ok(request, b"\x00" + _u16(value))


def _power_status(request: Request) -> int | None:
    if len(request.data) != 2:
        return status.MSG_WRONG_NUMBER_OF_DATA
    if int.from_bytes(request.data, "big") > NANO_MAX_POWER_CDBM:
        return status.MSG_POWER_TOO_HIGH
    return None


def _set_read_power(state: ModuleState, request: Request) -> Response:
    if (code := _power_status(request)) is not None:
        return _fail(request, code)
    state.read_power_cdbm = int.from_bytes(request.data, "big")
    return _ok(request)


def _set_write_power(state: ModuleState, request: Request) -> Response:
    if (code := _power_status(request)) is not None:
        return _fail(request, code)
    state.write_power_cdbm = int.from_bytes(request.data, "big")
    return _ok(request)


def _set_region(state: ModuleState, request: Request) -> Response:
    if len(request.data) != 1:
        return _fail(request, status.MSG_WRONG_NUMBER_OF_DATA)
    if request.data[0] not in AVAILABLE_REGIONS:
        return _fail(request, status.INVALID_REGION)  # chosen by name; no capture
    state.region = request.data[0]
    return _ok(request)


def _set_protocol(state: ModuleState, request: Request) -> Response:
    if int.from_bytes(request.data, "big") != cmd.TAG_PROTOCOL_GEN2:
        return _fail(request, status.INVALID_PROTOCOL_SPECIFIED)  # the Nano is Gen2 only
    state.protocol = cmd.TAG_PROTOCOL_GEN2
    return _ok(request)


def _set_antenna(state: ModuleState, request: Request) -> Response:
    data = request.data
    if len(data) == 2:  # the short form: one logical TX, RX pair
        pairs = [(data[0], data[1])]
    elif data[:1] == bytes((ANTENNA_OPTION_SEARCH_LIST,)) and len(data) % 2 == 1 and len(data) > 1:
        pairs = [(data[i], data[i + 1]) for i in range(1, len(data), 2)]
    else:
        return _ok(request)  # port power / settling-time lists: accepted, not modelled
    if any(tx not in state.ports or rx not in state.ports for tx, rx in pairs):
        return _fail(request, status.INVALID_ANTENNA_CONFIG)  # chosen by name; no capture
    state.antenna_plan = tuple(tx for tx, _ in pairs)
    return _ok(request)


def _get_antenna(state: ModuleState, request: Request) -> Response:
    # "FF 01 61 05" -> "05 01 00" on the logged Nano; other options answer with the plan.
    if request.data[:1] == b"\x05":
        return _ok(request, b"\x05\x01\x00")
    port = state.active_ports[0]
    return _ok(request, bytes((port, port)))


# Reader config (0x9A / 0x6A, under option 01) and Gen2 parameters (0x9B / 0x6B, under protocol
# 05) are both a table of keyed values, set as "selector key value..." and read back as
# "selector key" -> "selector key value...":
#   "FF 03 9A 01 0C 00" -> "FF 00 9A 00 00 A6 33"    "FF 02 6A 01 0C" -> "01 0C 01"
#   "FF 03 9B 05 02 02" -> "FF 00 9B 00 00 B6 12"    "FF 02 6B 05 01" -> "05 01 01 00"
def _set_keyed(table: dict[int, bytes], selector: int, request: Request) -> Response:
    if len(request.data) < 3 or request.data[0] != selector:
        return _fail(request, status.MSG_INVALID_PARAMETER_VALUE)
    table[request.data[1]] = request.data[2:]
    return _ok(request)


def _get_keyed(table: dict[int, bytes], request: Request) -> Response:
    if len(request.data) != 2:
        return _fail(request, status.MSG_WRONG_NUMBER_OF_DATA)
    return _ok(request, request.data + table.get(request.data[1], b"\x00"))


def _set_baud(state: ModuleState, request: Request) -> Response:
    baud = int.from_bytes(request.data, "big")
    if len(request.data) != 4 or baud not in BAUD_RATES:
        return _fail(request, status.INVALID_BAUD_RATE)
    state.baud = baud  # a pty has no line speed; remembered for GET-style checks only
    return _ok(request)


def _set_power_mode(state: ModuleState, request: Request) -> Response:
    state.power_mode = request.data[0] if request.data else 0
    return _ok(request)


Handler = Callable[[ModuleState, Request], Response]
_HANDLERS: Final[dict[int, Handler]] = {
    cmd.OPCODE_VERSION: lambda s, r: VERSION_REPLY,
    OPCODE_HW_VERSION: lambda s, r: HW_VERSION_REPLY,
    cmd.OPCODE_GET_CURRENT_PROGRAM: lambda s, r: _ok(r, bytes((CURRENT_PROGRAM_APP,))),
    cmd.OPCODE_SET_BAUD_RATE: _set_baud,
    cmd.OPCODE_GET_REGION: lambda s, r: _ok(r, bytes((s.region,))),
    cmd.OPCODE_SET_REGION: _set_region,
    OPCODE_GET_AVAILABLE_REGIONS: lambda s, r: _ok(r, AVAILABLE_REGIONS),
    OPCODE_GET_HOP_TABLE: lambda s, r: _ok(r, b"".join(f.to_bytes(4) for f in s.hop_table_khz)),
    cmd.OPCODE_GET_TAG_PROTOCOL: lambda s, r: _ok(r, _u16(s.protocol)),
    cmd.OPCODE_SET_TAG_PROTOCOL: _set_protocol,
    OPCODE_GET_AVAILABLE_PROTOCOLS: lambda s, r: _ok(r, _u16(cmd.TAG_PROTOCOL_GEN2)),
    cmd.OPCODE_GET_READ_TX_POWER: lambda s, r: _get_power(s.read_power_cdbm, r),
    cmd.OPCODE_SET_READ_TX_POWER: _set_read_power,
    OPCODE_GET_WRITE_TX_POWER: lambda s, r: _get_power(s.write_power_cdbm, r),
    OPCODE_SET_WRITE_TX_POWER: _set_write_power,
    OPCODE_GET_ANTENNA_PORT: _get_antenna,
    cmd.OPCODE_SET_ANTENNA_PORT: _set_antenna,
    OPCODE_GET_READER_OPTIONAL_PARAMS: lambda s, r: _get_keyed(s.reader_config, r),
    cmd.OPCODE_SET_READER_OPTIONAL_PARAMS: lambda s, r: _set_keyed(
        s.reader_config, READER_CONFIG_OPTION, r
    ),
    OPCODE_GET_PROTOCOL_PARAM: lambda s, r: _get_keyed(s.gen2_params, r),
    OPCODE_SET_PROTOCOL_PARAM: lambda s, r: _set_keyed(s.gen2_params, cmd.TAG_PROTOCOL_GEN2, r),
    cmd.OPCODE_GET_POWER_MODE: lambda s, r: _ok(r, bytes((s.power_mode,))),
    OPCODE_SET_POWER_MODE: _set_power_mode,
    cmd.OPCODE_GET_TEMPERATURE: lambda s, r: _ok(r, s.temperature_c.to_bytes(1, signed=True)),
}
