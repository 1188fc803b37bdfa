"""Fixtures for the simulator tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sim_far_end import FarEnd


@pytest.fixture
async def far_ends() -> AsyncIterator[list[FarEnd]]:
    opened: list[FarEnd] = []
    yield opened
    for end in opened:
        end.close()
