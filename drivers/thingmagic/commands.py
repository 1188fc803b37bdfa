"""Commands the gateway sends, each a function returning a Request (docs/drivers/thingmagic.md
1.4-1.10).

Every command that appears in the SparkFun logs is built byte-exact to the capture; the tests
hold each one against its frame. Nothing here writes: callers send ``request.to_bytes()``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from drivers.errors import DeviceError, EncodeError
from drivers.thingmagic.codec import pack_uint
from drivers.thingmagic.frames import Request, Response
from drivers.thingmagic.status import SUCCESS, describe

OPCODE_VERSION: Final = 0x03
OPCODE_BOOT_FIRMWARE: Final = 0x04
OPCODE_SET_BAUD_RATE: Final = 0x06
OPCODE_GET_CURRENT_PROGRAM: Final = 0x0C
OPCODE_READ_TAG_ID_MULTIPLE: Final = 0x22
OPCODE_READ_TAG_DATA: Final = 0x28
OPCODE_GET_TAG_ID_BUFFER: Final = 0x29
OPCODE_CLEAR_TAG_ID_BUFFER: Final = 0x2A
OPCODE_MULTI_PROTOCOL_TAG_OP: Final = 0x2F
OPCODE_GET_READ_TX_POWER: Final = 0x62
OPCODE_GET_TAG_PROTOCOL: Final = 0x63
OPCODE_GET_REGION: Final = 0x67
OPCODE_GET_POWER_MODE: Final = 0x68
OPCODE_GET_TEMPERATURE: Final = 0x72
OPCODE_SET_ANTENNA_PORT: Final = 0x91
OPCODE_SET_READ_TX_POWER: Final = 0x92
OPCODE_SET_TAG_PROTOCOL: Final = 0x93
OPCODE_SET_REGION: Final = 0x97
OPCODE_SET_READER_OPTIONAL_PARAMS: Final = 0x9A
OPCODE_SET_USER_PROFILE: Final = 0x9D

# Tag protocol ids (tmr_tag_protocol.h).
TAG_PROTOCOL_NONE: Final = 0x00
TAG_PROTOCOL_ISO180006B: Final = 0x03
TAG_PROTOCOL_GEN2: Final = 0x05
TAG_PROTOCOL_ISO180006B_UCODE: Final = 0x06
TAG_PROTOCOL_IPX64: Final = 0x07
TAG_PROTOCOL_IPX256: Final = 0x08
TAG_PROTOCOL_ATA: Final = 0x1D

REGION_NA: Final = 0x01
REGION_EU: Final = 0x02
REGION_KR: Final = 0x03
REGION_IN: Final = 0x04
REGION_JP: Final = 0x05
REGION_PRC: Final = 0x06
REGION_EU2: Final = 0x07
REGION_EU3: Final = 0x08
REGION_KR2: Final = 0x09
REGION_PRC2: Final = 0x0A
REGION_AU: Final = 0x0B
REGION_NZ: Final = 0x0C
REGION_NA2: Final = 0x0D  # what SparkFun uses for North America on the M6e Nano
REGION_NA3: Final = 0x0E
REGION_OPEN: Final = 0xFF

# Reader-configuration keys (0x9A / 0x6A, form 01 KEY VALUE).
CONFIG_UNIQUE_BY_ANTENNA: Final = 0x00
CONFIG_RECORD_HIGHEST_RSSI: Final = 0x06
CONFIG_RSSI_IN_DBM: Final = 0x09
CONFIG_ENABLE_READ_FILTER: Final = 0x0C
CONFIG_READ_FILTER_TIMEOUT: Final = 0x0D
CONFIG_SEND_CRC: Final = 0x1B

# Search flags (serial_reader_imp.h) and the start-read field values.
SEARCH_FLAG_CONFIGURED_LIST: Final = 0x0003
SEARCH_FLAG_TAG_STREAMING: Final = 0x0008
SEARCH_FLAG_LARGE_TAG_POPULATION_SUPPORT: Final = 0x0010
SEARCH_FLAG_DUTY_CYCLE_CONTROL: Final = 0x0400
TM_OPTION_CONTINUOUS_READING: Final = 0x01
TM_OPTION_STOP_READING: Final = 0x02
SINGULATION_OPTION_FLAG_METADATA: Final = 0x10
DEFAULT_METADATA_FLAGS: Final = 0x01FF


def get_version() -> Request:
    return Request(OPCODE_VERSION)


def set_baud_rate(baud: int) -> Request:
    """Answered at the old speed; the module switches after the reply (not saved to NVM)."""
    return Request(OPCODE_SET_BAUD_RATE, pack_uint(baud, 4, "baud"))


def get_region() -> Request:
    return Request(OPCODE_GET_REGION)


def set_region(code: int) -> Request:
    return Request(OPCODE_SET_REGION, pack_uint(code, 1, "region"))


def get_read_tx_power(*, with_limits: bool = False) -> Request:
    """Option 01 also returns the max and min the module allows (in cdBm)."""
    return Request(OPCODE_GET_READ_TX_POWER, bytes((int(with_limits),)))


def set_read_tx_power(cdbm: int) -> Request:
    """Power in centi-dBm: 2700 is 27.00 dBm, the M6e Nano's maximum."""
    return Request(OPCODE_SET_READ_TX_POWER, pack_uint(cdbm, 2, "cdbm"))


def set_tag_protocol(protocol: int = TAG_PROTOCOL_GEN2) -> Request:
    return Request(OPCODE_SET_TAG_PROTOCOL, pack_uint(protocol, 2, "protocol"))


def set_antenna_plan(ports: Sequence[tuple[int, int]]) -> Request:
    """Search list of (TX port, RX port) pairs, option 02: ``[(1, 1)]`` is monostatic port 1."""
    if not ports:
        raise EncodeError("the antenna search list needs at least one (tx, rx) pair")
    body = b"".join(pack_uint(tx, 1, "tx port") + pack_uint(rx, 1, "rx port") for tx, rx in ports)
    return Request(OPCODE_SET_ANTENNA_PORT, b"\x02" + body)


def set_reader_config(key: int, value: int) -> Request:
    """``set_reader_config(CONFIG_ENABLE_READ_FILTER, 0)`` is SparkFun's first start-up step."""
    return Request(
        OPCODE_SET_READER_OPTIONAL_PARAMS,
        b"\x01" + pack_uint(key, 1, "key") + pack_uint(value, 1, "value"),
    )


def start_continuous_read(
    *,
    metadata_flags: int = DEFAULT_METADATA_FLAGS,
    search_timeout_ms: int = 1000,
    search_flags: int = 0x001B,
    off_time_ms: int | None = None,
) -> Request:
    """MULTI_PROTOCOL_TAG_OP wrapping a streaming READ_TAG_ID_MULTIPLE for Gen2.

    ``search_timeout_ms`` is the on-time of one search cycle; a keep-alive follows each cycle.
    ``off_time_ms`` is required exactly when ``search_flags`` asks for duty-cycle control.
    """
    if (off_time_ms is None) == bool(search_flags & SEARCH_FLAG_DUTY_CYCLE_CONTROL):
        raise EncodeError("off_time_ms goes with SEARCH_FLAG_DUTY_CYCLE_CONTROL, and only with it")
    embedded = (
        bytes((SINGULATION_OPTION_FLAG_METADATA,))
        + pack_uint(search_flags, 2, "search_flags")
        + pack_uint(search_timeout_ms, 2, "search_timeout_ms")
        + (b"" if off_time_ms is None else pack_uint(off_time_ms, 2, "off_time_ms"))
        + pack_uint(metadata_flags, 2, "metadata_flags")
    )
    head = bytes((0x00, 0x00, TM_OPTION_CONTINUOUS_READING, OPCODE_READ_TAG_ID_MULTIPLE))
    # timeout 0 ("zero for true continuous reading"), no multi-protocol flags, one protocol with
    # PLEN = length of the embedded command after its opcode.
    protocol_entry = bytes((0x00, 0x00, TAG_PROTOCOL_GEN2, len(embedded)))
    return Request(
        OPCODE_MULTI_PROTOCOL_TAG_OP,
        head + protocol_entry + bytes((OPCODE_READ_TAG_ID_MULTIPLE,)) + embedded,
    )


def stop_continuous_read() -> Request:
    return Request(OPCODE_MULTI_PROTOCOL_TAG_OP, bytes((0x00, 0x00, TM_OPTION_STOP_READING)))


def clear_tag_buffer() -> Request:
    return Request(OPCODE_CLEAR_TAG_ID_BUFFER)


def read_tag_multiple(timeout_ms: int, *, search_flags: int = 0x0013) -> Request:
    """A timed inventory into the tag buffer; the reply carries the tag count (u32)."""
    body = (
        b"\x00"
        + pack_uint(search_flags, 2, "search_flags")
        + pack_uint(timeout_ms, 2, "timeout_ms")
    )
    return Request(OPCODE_READ_TAG_ID_MULTIPLE, body)


def get_tag_buffer(metadata_flags: int = DEFAULT_METADATA_FLAGS) -> Request:
    return Request(
        OPCODE_GET_TAG_ID_BUFFER, pack_uint(metadata_flags, 2, "metadata_flags") + b"\x00"
    )


def get_temperature() -> Request:
    return Request(OPCODE_GET_TEMPERATURE)


def check_response(resp: Response, expected_opcode: int) -> Response:
    """Return ``resp`` if it is a success reply to ``expected_opcode``; else DeviceError."""
    if resp.opcode == OPCODE_BOOT_FIRMWARE and expected_opcode != OPCODE_BOOT_FIRMWARE:
        raise DeviceError("module rebooted (boot response 0x04) instead of answering")
    if resp.opcode != expected_opcode:
        raise DeviceError(
            f"expected a reply to 0x{expected_opcode:02X}, got opcode 0x{resp.opcode:02X}"
        )
    if resp.status != SUCCESS:
        raise DeviceError(
            f"opcode 0x{resp.opcode:02X} failed: {describe(resp.status)}", status=resp.status
        )
    return resp


def parse_temperature(resp: Response) -> int:
    """Degrees Celsius from a GET_TEMPERATURE reply (a signed byte)."""
    data = check_response(resp, OPCODE_GET_TEMPERATURE).data
    if not data:
        raise DeviceError("temperature reply carries no data")
    return int.from_bytes(data[:1], "big", signed=True)
