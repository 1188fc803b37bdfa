"""One weighing channel as a Modbus device: request PDUs out, readings in. No I/O.

The gateway's session owns a pymodbus client and does the talking; this class only builds the
request PDUs it should execute and interprets the responses, so the same code drives a real
transmitter, the simulator, or a test that has nothing but bytes::

    scale = Scale(FLINTEC_FT13, device_id=1)
    response = await client.execute(False, scale.read_request())
    reading = scale.parse_reading(response, now=loop.time())

pymodbus frames the PDUs and checks their CRC (``rtu.py`` exposes the same framer for code that
works on bytes). A Modbus exception reply becomes a ``DeviceError`` carrying its code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from pymodbus.pdu import ExceptionResponse, ModbusPDU
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersRequest,
    ReadHoldingRegistersResponse,
    ReadInputRegistersRequest,
    WriteMultipleRegistersRequest,
    WriteMultipleRegistersResponse,
    WriteSingleRegisterRequest,
    WriteSingleRegisterResponse,
)

from drivers.errors import DeviceError, EncodeError, FrameError
from drivers.modbus_scale.conversion import WEIGHT_REGISTERS, grams_from_raw, raw_from_registers
from drivers.modbus_scale.registers import MAX_DECIMALS, ReadFunction, RegisterMap

MODBUS_MAX_DEVICE_ID: Final = 247  # 0 is broadcast, 248..255 reserved (Modbus over serial 2.2)
# Exception codes (Modbus application protocol 7; Laumas TLU manual quotes 1-3).
ILLEGAL_FUNCTION: Final = 0x01
ILLEGAL_DATA_ADDRESS: Final = 0x02
ILLEGAL_DATA_VALUE: Final = 0x03


@dataclass(frozen=True, slots=True)
class WeightReading:
    grams: float
    raw: int | float  # as the instrument sent it, in display units times 10**decimals
    decimals: int
    t: float  # when the response arrived, on the caller's clock


class Scale:
    def __init__(self, regmap: RegisterMap, device_id: int = 1, *, use_fc06: bool = False) -> None:
        if not 1 <= device_id <= MODBUS_MAX_DEVICE_ID:
            raise EncodeError(f"device id {device_id} outside 1..{MODBUS_MAX_DEVICE_ID}")
        self.regmap = regmap
        self.device_id = device_id
        self.decimals = regmap.decimals
        # FC16 is what Flintec and Laumas document for the command register; some modules
        # only take FC06 (write single register).
        self.use_fc06 = use_fc06

    def read_request(self) -> ModbusPDU:
        cls = (
            ReadHoldingRegistersRequest
            if self.regmap.function is ReadFunction.HOLDING
            else ReadInputRegistersRequest
        )
        return cls(
            address=self.regmap.weight_address, count=WEIGHT_REGISTERS, dev_id=self.device_id
        )

    def parse_reading(self, response: ModbusPDU, now: float) -> WeightReading:
        registers = self._registers(response, self.regmap.function, WEIGHT_REGISTERS)
        raw = raw_from_registers(registers, self.regmap)
        return WeightReading(
            grams_from_raw(raw, self.regmap, self.decimals), raw, self.decimals, now
        )

    def decimals_request(self) -> ModbusPDU | None:
        """Read the decimals register once at start, if the map has one."""
        if self.regmap.decimals_address is None:
            return None
        return ReadHoldingRegistersRequest(
            address=self.regmap.decimals_address, count=1, dev_id=self.device_id
        )

    def parse_decimals(self, response: ModbusPDU) -> int:
        (value,) = self._registers(response, ReadFunction.HOLDING, 1)
        if value > MAX_DECIMALS:
            raise FrameError(f"{self.regmap.name}: decimals register holds {value}")
        self.decimals = value
        return value

    def tare_request(self) -> ModbusPDU:
        return self._command_request(self.regmap.tare_command, "tare")

    def zero_request(self) -> ModbusPDU:
        return self._command_request(self.regmap.zero_command, "zero")

    def check_write(self, response: ModbusPDU) -> None:
        """Raise unless ``response`` acknowledges a command-register write."""
        self._raise_for_exception(response)
        if not isinstance(response, WriteMultipleRegistersResponse | WriteSingleRegisterResponse):
            raise FrameError(f"unexpected reply to a write: {response}")

    def _command_request(self, code: int | None, what: str) -> ModbusPDU:
        address = self.regmap.command_address
        if address is None or code is None:
            raise EncodeError(f"{self.regmap.name}: no {what} command configured")
        if self.use_fc06:
            return WriteSingleRegisterRequest(
                address=address, registers=[code], dev_id=self.device_id
            )
        return WriteMultipleRegistersRequest(
            address=address, registers=[code], dev_id=self.device_id
        )

    def _registers(self, response: ModbusPDU, function: ReadFunction, count: int) -> list[int]:
        self._raise_for_exception(response)
        if not isinstance(response, ReadHoldingRegistersResponse):  # input is a subclass
            raise FrameError(f"unexpected reply to a read: {response}")
        if response.function_code != function or len(response.registers) != count:
            raise FrameError(f"{self.regmap.name}: expected {count} registers, got {response}")
        return list(response.registers)

    def _raise_for_exception(self, response: ModbusPDU) -> None:
        if isinstance(response, ExceptionResponse) or response.isError():
            code = response.exception_code
            raise DeviceError(f"{self.regmap.name}: Modbus exception {code}", status=code)
        if response.dev_id not in (0, self.device_id):
            raise FrameError(f"reply from device {response.dev_id}, expected {self.device_id}")
