"""Fixtures of the integration tests: a simulated ThingMagic reader on a pty."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from harness import SCENARIO, HeldClock

from firmware_sim.pty import SimPort
from firmware_sim.thingmagic import ThingMagicSim
from firmware_sim.traffic import Antenna, TrafficModel


@pytest.fixture
async def reader(tmp_path: Path) -> AsyncIterator[tuple[SimPort, HeldClock]]:
    port = SimPort(tmp_path, "door", seed=5)
    port.open()
    antennas = [Antenna("door", i + 1, z) for i, z in enumerate(SCENARIO.zones)]
    model = TrafficModel(miss_rate=0.2, bleed_rate_hz=0.0)
    clock = HeldClock()
    sim = ThingMagicSim(port, SCENARIO, antennas, model=model, seed=5, clock=clock)
    task = asyncio.create_task(sim.run())
    yield port, clock
    task.cancel()
    port.close()
