"""The Modbus scale simulator over a real pty, polled by pymodbus's own async serial client."""

from __future__ import annotations

import asyncio
import dataclasses
import statistics
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pymodbus.client import AsyncModbusSerialClient
from pymodbus.exceptions import ModbusIOException
from pymodbus.pdu.register_message import ReadHoldingRegistersRequest

from drivers.errors import DeviceError
from drivers.modbus_scale import FLINTEC_FT13, LAUMAS, Scale, generic_channel
from firmware_sim.modbus_scale import Channel, ModbusScaleSim
from firmware_sim.pty import SimPort
from firmware_sim.shelf import Shelf

pytestmark = pytest.mark.timeout(15)


@dataclasses.dataclass
class Rig:
    sim: ModbusScaleSim
    client: AsyncModbusSerialClient

    async def weigh(self, scale: Scale) -> float:
        response = await self.client.execute(False, scale.read_request())
        return scale.parse_reading(response, asyncio.get_running_loop().time()).grams


async def make_rig(tmp_path: Path, channels: list[Channel]) -> AsyncIterator[Rig]:
    async with SimPort(tmp_path, "scale") as port:
        sim = ModbusScaleSim(port, channels, device_id=1)
        task = asyncio.create_task(sim.run())
        client = AsyncModbusSerialClient(str(port.path), baudrate=9600, timeout=0.3, retries=0)
        assert await client.connect()
        try:
            yield Rig(sim, client)
        finally:
            client.close()
            port.close()
            await asyncio.wait_for(task, 2)


@pytest.fixture
async def flintec(tmp_path: Path) -> AsyncIterator[Rig]:
    shelf = Shelf(noise_g=0.0, seed=1)
    async for rig in make_rig(tmp_path, [Channel(FLINTEC_FT13, shelf)]):
        yield rig


def now() -> float:
    return asyncio.get_running_loop().time()


async def test_weight_follows_the_items_once_settled(flintec: Rig) -> None:
    shelf, scale = flintec.sim.channels[0].shelf, Scale(FLINTEC_FT13)
    assert await flintec.weigh(scale) == 0
    shelf.place("soup", 410, now() - 2)  # placed two seconds ago: settled
    shelf.place("beans", 250, now() - 2)
    assert await flintec.weigh(scale) == 660
    shelf.take("soup", now() - 2)
    assert await flintec.weigh(scale) == 250
    assert [(e.item, e.delta_g) for e in shelf.events] == [
        ("soup", 410),
        ("beans", 250),
        ("soup", -410),
    ]


async def test_a_touch_wobbles_then_settles(flintec: Rig) -> None:
    shelf, scale = flintec.sim.channels[0].shelf, Scale(FLINTEC_FT13)
    shelf.place("milk", 1000, now() - 5)
    shelf.touch(now())
    early = [await flintec.weigh(scale) for _ in range(3)]
    assert any(abs(g - 1000) > 20 for g in early)
    await asyncio.sleep(shelf.settle_s)
    assert await flintec.weigh(scale) == 1000


async def test_tare_through_the_command_register(flintec: Rig) -> None:
    shelf, scale = flintec.sim.channels[0].shelf, Scale(FLINTEC_FT13)
    shelf.place("crate", 2000, now() - 5)
    scale.check_write(await flintec.client.execute(False, scale.tare_request()))
    assert flintec.sim.channels[0].commands == [FLINTEC_FT13.tare_command]
    assert await flintec.weigh(scale) == 0
    shelf.place("jar", 300, now() - 5)
    assert await flintec.weigh(scale) == 300


async def test_injected_exception_is_a_device_error(flintec: Rig) -> None:
    flintec.sim.faults.exception_next = [4]
    with pytest.raises(DeviceError) as info:
        await flintec.weigh(Scale(FLINTEC_FT13))
    assert info.value.status == 4
    assert await flintec.weigh(Scale(FLINTEC_FT13)) == 0  # one-shot


async def test_unmapped_register_and_unknown_tare_code_are_refused(flintec: Rig) -> None:
    response = await flintec.client.execute(
        False, ReadHoldingRegistersRequest(address=100, count=2, dev_id=1)
    )
    assert response.isError()
    assert response.exception_code == 2
    bad_code = Scale(dataclasses.replace(FLINTEC_FT13, tare_command=77))
    with pytest.raises(DeviceError) as info:
        bad_code.check_write(await flintec.client.execute(False, bad_code.tare_request()))
    assert info.value.status == 3


async def test_a_silent_transmitter_times_out(flintec: Rig) -> None:
    flintec.sim.faults.silent = True
    with pytest.raises(ModbusIOException):
        await flintec.weigh(Scale(FLINTEC_FT13))


async def test_multi_channel_module_weighs_each_shelf(tmp_path: Path) -> None:
    left, right = Shelf(noise_g=0.0), Shelf(noise_g=0.0)
    maps = [generic_channel(1, decimals=1), generic_channel(2, decimals=1)]
    async for rig in make_rig(tmp_path, [Channel(maps[0], left), Channel(maps[1], right)]):
        left.place("a", 123.4, now() - 5)
        right.place("b", 56.7, now() - 5)
        assert await rig.weigh(Scale(maps[0])) == pytest.approx(123.4)
        assert await rig.weigh(Scale(maps[1])) == pytest.approx(56.7)
        # Both weights in one FC03 of 4 registers, as the module allows.
        response = await rig.client.execute(
            False, ReadHoldingRegistersRequest(address=0, count=4, dev_id=1)
        )
        assert list(response.registers) == [0, 1234, 0, 567]


async def test_laumas_in_kilograms(tmp_path: Path) -> None:
    kg = dataclasses.replace(LAUMAS, decimals=3, unit_g=1000.0)
    shelf = Shelf(noise_g=0.0)
    async for rig in make_rig(tmp_path, [Channel(kg, shelf)]):
        shelf.place("sack", 12_345.0, now() - 5)
        assert await rig.weigh(Scale(kg)) == pytest.approx(12_345.0)


# --- the shelf model on its own -------------------------------------------------------------------


def test_noise_is_seeded_and_has_the_configured_spread() -> None:
    a, b = Shelf(noise_g=2.0, seed=7), Shelf(noise_g=2.0, seed=7)
    samples = [a.measure(100.0 + i) for i in range(2000)]
    assert samples == [b.measure(100.0 + i) for i in range(2000)]
    assert abs(statistics.fmean(samples)) < 0.3
    assert 1.8 < statistics.stdev(samples) < 2.2


def test_wobble_decays_and_is_gone_after_settle_time() -> None:
    shelf = Shelf(noise_g=0.0, touch_g=150.0, settle_s=1.0)
    shelf.place("x", 500, now=10.0)
    assert shelf.measure(10.0) == pytest.approx(650.0)  # cos(0) at the touch
    assert not shelf.settled(10.5)
    peak_late = max(abs(shelf.measure(10.7 + i / 100) - 500) for i in range(20))
    assert peak_late < 150 * 0.1
    assert shelf.measure(11.0) == 500
    assert shelf.settled(11.0)


def test_placing_the_same_item_twice_is_refused() -> None:
    shelf = Shelf()
    shelf.place("x", 1, 0.0)
    with pytest.raises(ValueError, match="already"):
        shelf.place("x", 1, 0.0)
