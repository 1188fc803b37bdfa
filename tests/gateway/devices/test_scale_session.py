"""The Modbus scale session against the scale simulator, on real ptys."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from pathlib import Path
from typing import Any

import pytest

from drivers.errors import DeviceError, DriverError, TransportError
from drivers.modbus_scale import FLINTEC_FT13, LAUMAS, ReadFunction, Scale, WeightFormat
from firmware_sim.modbus_scale import Channel, ModbusScaleSim
from firmware_sim.pty import SimPort
from firmware_sim.shelf import Shelf
from gateway.clock import SystemClock
from gateway.config import ModbusScaleSensor
from gateway.devices.base import DeviceContext
from gateway.devices.modbus_scale import ModbusScaleSession
from gateway.health import DeviceState
from gateway.reads.batch import ReadCollector, Subjects
from tests import waiting

pytestmark = pytest.mark.timeout(20)

States = list[tuple[DeviceState, str | None]]

# Sessions may end with their own DriverError when cancelled mid-exchange.
background = functools.partial(waiting.background, also=(DriverError,))
until = functools.partial(waiting.until, timeout=10.0, interval=0.02)


def context(states: States) -> DeviceContext:
    return DeviceContext(
        name="scale",
        index=3,
        zones={0: 0},
        customer_prefixes=(),
        subjects=Subjects(),
        collector=ReadCollector(),
        clock=SystemClock(),
        wake=lambda: None,
        on_state=lambda _name, state, detail: states.append((state, detail)),
    )


def sensor(port: SimPort, **settings: Any) -> ModbusScaleSensor:
    return ModbusScaleSensor.model_validate(
        {"id": "scale", "driver": "modbus-scale", "port": str(port.path), "zone": "shelf-a"}
        | {"poll_hz": 20.0, "idle_poll_hz": 20.0, "timeout_s": 0.2, "settle_s": 0.2} | settings
    )  # fmt: skip


async def test_polls_the_weight_in_grams_at_the_configured_rate(tmp_path: Path) -> None:
    states: States = []
    readings: list[tuple[float, float]] = []
    shelf = Shelf(noise_g=0.0, seed=1)
    shelf.place("flour", 1000.0, -10.0)  # long settled
    # An instrument set up in kg with 3 decimals, weight at 40008/40009: raw 1000 = 1.000 kg.
    kg3 = dataclasses.replace(LAUMAS, decimals=3, unit_g=1000.0)
    async with SimPort(tmp_path, "scale") as port:
        sim = ModbusScaleSim(port, [Channel(kg3, shelf)], device_id=7)
        config = sensor(port, register_map="laumas", unit=7, decimals=3, weight_unit="kg")
        session = ModbusScaleSession(config, lambda g, t: readings.append((g, t)), SystemClock())
        async with background(sim.run()), background(session.run(context(states))):
            await until(lambda: len(readings) >= 20)
    assert {g for g, _ in readings} == {1000.0}
    times = [t for _, t in readings[1:]]  # the first is bring-up's, just before the schedule
    rate = (len(times) - 1) / (times[-1] - times[0])
    assert 14.0 < rate < 21.0  # 20 Hz asked for; a loaded machine may skip a tick
    assert states[0] == (DeviceState.OK, "laumas, 1000 g")
    assert session.lost == 0


async def test_tares_on_start_and_follows_the_shelf(tmp_path: Path) -> None:
    states: States = []
    readings: list[float] = []
    shelf = Shelf(noise_g=0.0, seed=1)
    shelf.place("board", 3000.0, -10.0)  # the shelf board itself, tared away
    async with SimPort(tmp_path, "scale") as port:
        sim = ModbusScaleSim(port, [Channel(FLINTEC_FT13, shelf)])
        config = sensor(port, register_map="flintec", tare_on_start=True)
        session = ModbusScaleSession(config, lambda g, t: readings.append(g), SystemClock())
        async with background(sim.run()), background(session.run(context(states))):
            await until(lambda: len(readings) >= 3)
            shelf.place("soup", 410.0, asyncio.get_running_loop().time() - 5.0)
            await until(lambda: readings[-1] == 410.0)
    assert sim.channels[0].commands == [FLINTEC_FT13.tare_command]
    assert readings[0] == 0.0


async def test_an_exception_reply_is_an_error_state_until_a_good_reading(tmp_path: Path) -> None:
    states: States = []
    readings: list[float] = []
    async with SimPort(tmp_path, "scale") as port:
        sim = ModbusScaleSim(port, [Channel(FLINTEC_FT13, Shelf(noise_g=0.0))])
        session = ModbusScaleSession(
            sensor(port, register_map="flintec"), lambda g, t: readings.append(g), SystemClock()
        )
        async with background(sim.run()), background(session.run(context(states))):
            await until(lambda: len(readings) >= 2)
            sim.faults.exception_next = [4, 4]  # SERVER DEVICE FAILURE: a load cell fault
            await until(lambda: len(states) >= 3)
    assert [s for s, _ in states] == [DeviceState.OK, DeviceState.ERROR, DeviceState.OK]
    assert "exception 4" in str(states[1][1])


async def test_a_silent_transmitter_fails_after_the_lost_polls(tmp_path: Path) -> None:
    states: States = []
    readings: list[float] = []
    async with SimPort(tmp_path, "scale") as port:
        sim = ModbusScaleSim(port, [Channel(FLINTEC_FT13, Shelf(noise_g=0.0))])
        config = sensor(port, register_map="flintec", max_lost_polls=3)
        session = ModbusScaleSession(config, lambda g, t: readings.append(g), SystemClock())
        async with background(sim.run()), background(session.run(context(states))) as running:
            await until(lambda: len(readings) >= 2)
            sim.faults.silent = True
            with pytest.raises(DeviceError, match="3 polls in a row lost"):
                await asyncio.wait_for(running, 5)
    assert session.lost == 3


async def test_a_wrong_unit_id_fails_at_start_with_a_hint(tmp_path: Path) -> None:
    async with SimPort(tmp_path, "scale") as port:
        sim = ModbusScaleSim(port, [Channel(FLINTEC_FT13, Shelf())], device_id=2)
        session = ModbusScaleSession(
            sensor(port, register_map="flintec", unit=1), lambda g, t: None, SystemClock()
        )
        async with background(sim.run()):
            with pytest.raises(DeviceError, match=r"no answer from unit 1 .* unit\?"):
                await asyncio.wait_for(session.run(context([])), 5)


async def test_an_unplugged_adapter_ends_the_session(tmp_path: Path) -> None:
    readings: list[float] = []
    async with SimPort(tmp_path, "scale") as port:
        sim = ModbusScaleSim(port, [Channel(FLINTEC_FT13, Shelf())])
        session = ModbusScaleSession(
            sensor(port, register_map="flintec"), lambda g, t: readings.append(g), SystemClock()
        )
        async with background(sim.run()), background(session.run(context([]))) as running:
            await until(lambda: len(readings) >= 2)
            port.hang_up()
            with pytest.raises(TransportError):
                await asyncio.wait_for(running, 5)


async def test_a_dead_port_path_is_a_transport_error(tmp_path: Path) -> None:
    config = ModbusScaleSensor(
        id="scale", driver="modbus-scale", port=str(tmp_path / "nothing"), zone="shelf-a"
    )
    with pytest.raises(TransportError):
        await ModbusScaleSession(config, lambda g, t: None, SystemClock()).run(context([]))


# -- the config a real installation needs ----------------------------------------------------


def scale_config(**settings: Any) -> ModbusScaleSensor:
    base = {"id": "s", "driver": "modbus-scale", "port": "/dev/ttyUSB1", "zone": "shelf-a"}
    return ModbusScaleSensor.model_validate(base | settings)


def test_a_preset_with_overrides_decimals_and_a_kg_display() -> None:
    regmap = scale_config(
        register_map="laumas",
        decimals=2,
        weight_unit="kg",
        factor=1.01,
        registers={"tare_command": 7, "format": "uint32", "function": "input"},
    ).regmap()
    assert (regmap.weight_address, regmap.command_address, regmap.tare_command) == (7, 5, 7)
    assert (regmap.format, regmap.function) == (WeightFormat.UINT32, ReadFunction.INPUT)
    assert regmap.decimals == 2
    assert regmap.unit_g == pytest.approx(1010.0)
    assert scale_config(channel=3).regmap().weight_address == 4  # generic: 2 * (channel - 1)


def test_a_configured_decimals_count_wins_over_the_register() -> None:
    regmap = dataclasses.replace(FLINTEC_FT13, decimals_address=9)
    assert Scale(regmap).decimals_request() is not None
    config = scale_config(register_map="flintec", registers={"decimals_address": 9}, decimals=1)
    assert Scale(config.regmap()).decimals_request() is None


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"stable_g": 10.0, "min_delta_g": 10.0}, "min_delta_g must be larger than stable_g"),
        ({"settle_s": 0.1, "poll_hz": 10.0}, "at least two polls"),
        ({"tare_on_start": True}, "no known tare command"),
        ({"tare_on_start": True, "register_map": "laumas"}, "tare_on_start needs"),
        ({"registers": {"weight_address": 65535}}, "less than or equal to 65534"),
    ],
)
def test_what_a_scale_config_refuses(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        scale_config(**settings)


def test_flintec_tares_on_start_without_overrides() -> None:
    assert scale_config(register_map="flintec", tare_on_start=True).regmap().tare_command == 2
