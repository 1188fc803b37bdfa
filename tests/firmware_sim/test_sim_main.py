from __future__ import annotations

import asyncio
import contextlib
import random
import tomllib
from pathlib import Path

import pytest

from firmware_sim.__main__ import main, neighbours_in_a_row, options, random_incidents
from firmware_sim.pty import SimPort
from firmware_sim.scenario import Scenario
from firmware_sim.thingmagic import ThingMagicSim
from firmware_sim.traffic import Antenna


@pytest.mark.timeout(20)
def test_runs_prints_a_config_and_writes_the_truth(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    truth = tmp_path / "truth.json"
    links = tmp_path / "devices"
    argv = ["--duration", "0.5", "--dir", str(links), "--truth", str(truth), "--zones", "in,out"]
    assert main([*argv, "--seed", "4", "--customers", "3", "--items", "2"]) == 0
    out = capsys.readouterr().out
    config = tomllib.loads(out[out.index("[[readers]]") :])
    reader, cards = config["readers"]
    assert reader["driver"] == "thingmagic"
    assert reader["port"] == str(links / "door")
    assert reader["antennas"] == {"1": "in", "2": "out"}
    assert (cards["driver"], cards["zone"], cards["port"]) == ("em4100", "in", str(links / "cards"))
    scenario = Scenario.from_json(truth.read_text())
    assert scenario.zones == ("in", "out")
    assert scenario.duration == 0.5
    assert sum(len(s.raw_id) == 10 for s in scenario.subjects) == 3  # --card-customers default
    assert not (links / "door").exists()  # the ports were closed on the way out
    assert not (links / "cards").exists()


def test_neighbours_in_a_row() -> None:
    assert neighbours_in_a_row(["a", "b", "c"]) == {"a": ("b",), "b": ("a", "c"), "c": ("b",)}


def test_options_are_the_cli_defaults_with_overrides() -> None:
    args = options(miss_rate=0.3)
    assert args.miss_rate == 0.3
    assert args.burst_miss == 0.6
    assert args.bytewise is False
    with pytest.raises(TypeError, match="no_such"):
        options(no_such=1)


@pytest.mark.timeout(20)
async def test_random_incidents_hit_a_running_sim(tmp_path: Path) -> None:
    scenario = Scenario.generate(seed=1, duration=60.0, zones=("a", "b"), customers=2, items=2)
    async with SimPort(tmp_path, "door") as port:
        sim = ThingMagicSim(port, scenario, [Antenna("door", 1, "a")], seed=1)
        async with asyncio.TaskGroup() as tg:
            runner = tg.create_task(sim.run())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2.5):
                    await random_incidents(sim, 0.1, random.Random(7))
            stats = sim.stats
            assert stats.hang_ups + stats.boots + stats.warnings >= 3
            assert port.is_up  # every hang-up ended in a replug
            port.close()
        assert runner.done()
