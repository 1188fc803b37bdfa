"""The scale simulator's builder, read by the daemon's own scale session and config model."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tomllib
from pathlib import Path

import pytest

from firmware_sim.modbus_scale import scale_device
from firmware_sim.scenario import Scenario, ScenarioClock, Subject, Visit
from firmware_sim.shelf import Shelf, item_grams, shelf_actions, stock
from firmware_sim.station import RunContext
from gateway.clock import SystemClock
from gateway.config import ModbusScaleSensor
from gateway.devices.base import DeviceContext
from gateway.devices.modbus_scale import ModbusScaleSession
from gateway.reads.batch import ReadCollector, Subjects

SOUP_1 = "3034257BF7194E4000000001"  # SGTIN-96: GTIN 80614141123458, serials 1 and 2
SOUP_2 = "3034257BF7194E4000000002"
CARD = "C0FFEE000000000000000001"
SCENARIO = Scenario(
    zones=("entrance", "shelf-a"),
    subjects=(Subject(SOUP_1, "item"), Subject(SOUP_2, "item"), Subject(CARD, "customer")),
    visits=(
        Visit(SOUP_1, "shelf-a", 0.0, 30.0),
        Visit(SOUP_2, "shelf-a", 0.0, 100.0),
        Visit(CARD, "shelf-a", 20.0, 25.0),
        Visit(SOUP_1, "shelf-a", 60.0, 100.0),
    ),
    duration=100.0,
)


def test_items_of_one_product_weigh_the_same() -> None:
    assert item_grams(SOUP_1) == item_grams(SOUP_2)
    assert 80.0 <= item_grams(SOUP_1) <= 1200.0


def test_the_scenario_becomes_stock_and_hands() -> None:
    shelf = Shelf(noise_g=0.0)
    stock(shelf, SCENARIO, "shelf-a")
    assert shelf.true_g == 2 * item_grams(SOUP_1)
    assert shelf.measure(0.0) == shelf.true_g  # stocked long ago: settled
    actions = [(a.t, a.kind, a.item) for a in shelf_actions(SCENARIO, "shelf-a")]
    assert actions == [(21.0, "touch", ""), (30.0, "take", SOUP_1), (60.0, "place", SOUP_1)]


@pytest.mark.timeout(20)
async def test_the_builder_makes_a_scale_the_daemon_can_read(tmp_path: Path) -> None:
    ctx = RunContext(SCENARIO, tmp_path, ScenarioClock(), seed=3)
    (device,) = scale_device(argparse.Namespace(), ctx)
    config = ModbusScaleSensor.model_validate(tomllib.loads(device.toml)["sensors"][0])
    assert (device.id, config.zone, config.port) == (
        "scale-shelf-a",
        "shelf-a",
        str(device.port.path),
    )
    readings: list[float] = []
    session = ModbusScaleSession(config, lambda g, t: readings.append(g), SystemClock())
    ctx_ = DeviceContext(
        name=device.id,
        index=0,
        zones={0: 0},
        customer_prefixes=(),
        subjects=Subjects(),
        collector=ReadCollector(),
        clock=SystemClock(),
        wake=lambda: None,
        on_state=lambda *_: None,
    )
    sim = asyncio.create_task(device.run())
    reader = asyncio.create_task(session.run(ctx_))
    try:
        async with asyncio.timeout(10):
            while len(readings) < 5:
                await asyncio.sleep(0.05)
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        device.port.close()
        await asyncio.wait_for(sim, 5)  # the simulator ends with its port
    assert all(abs(g - 2 * item_grams(SOUP_1)) < 3.0 for g in readings)
