"""A short run of the MQTT boundary fuzzer (``bench/fuzz_mqtt.py``; a million inputs there):
no exception escapes the inbound path or is caught by its containment, and every command input
gets exactly one result."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.fuzz_mqtt import fuzz

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("seed", [1, 2])
async def test_hostile_topics_and_payloads_each_cost_one_result_and_raise_nothing(
    tmp_path: Path, seed: int
) -> None:
    harness = await fuzz(3000, seed, tmp_path)
    assert harness.violations == []
    router = harness.router
    assert router.executed > 50  # the valid inputs got through too: the run means something
    assert {"schema", "malformed", "too_deep", "number", "unknown_output"} <= set(router.refused_by)
