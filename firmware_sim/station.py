"""A simulated shop station: the device builders shared by ``python -m firmware_sim`` and
``silentgate demo``.

Each builder takes the simulator options and the shared run context and returns the devices it
adds, each with the ``[[readers]]`` (or ``[[sensors]]``) table that points a daemon at it. A new
simulated device family is one more builder in ``DEVICE_BUILDERS`` (and, if it needs them, a few
more options in ``parser``).
"""

from __future__ import annotations

import argparse
import asyncio
import random
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from firmware_sim.display import DisplaySim
from firmware_sim.em4100 import Em4100Sim
from firmware_sim.faults import Faults
from firmware_sim.modbus_scale import scale_device
from firmware_sim.pty import Chunking, SimPort
from firmware_sim.scenario import Scenario
from firmware_sim.thingmagic import ThingMagicSim
from firmware_sim.traffic import Antenna, TrafficModel


@dataclass(frozen=True, slots=True)
class RunContext:
    scenario: Scenario
    link_dir: Path
    clock: Callable[[], float]
    seed: int


@dataclass(frozen=True, slots=True)
class SimDevice:
    id: str
    port: SimPort
    run: Callable[[], Coroutine[Any, Any, None]]
    toml: str  # the config table that points the daemon at this device


DeviceBuilder = Callable[[argparse.Namespace, RunContext], list[SimDevice]]


def neighbours_in_a_row(zones: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Zones side by side in the order given: each one's antenna bleeds into the next."""
    return {
        z: tuple(zones[j] for j in (i - 1, i + 1) if 0 <= j < len(zones))
        for i, z in enumerate(zones)
    }


def thingmagic_reader(args: argparse.Namespace, ctx: RunContext) -> list[SimDevice]:
    zones = ctx.scenario.zones
    antennas = [Antenna("door", i + 1, zone) for i, zone in enumerate(zones)]
    model = TrafficModel(
        miss_rate=args.miss_rate,
        burst_miss=args.burst_miss,
        bleed_rate_hz=args.bleed_rate,
        neighbours=neighbours_in_a_row(zones),
    )
    port = SimPort(ctx.link_dir, "door", seed=ctx.seed)
    port.open()
    faults = Faults(
        garbage_rate=args.garbage_rate,
        corrupt_rate=args.corrupt_rate,
        chunking=Chunking.BYTEWISE if args.bytewise else Chunking.WHOLE,
    )
    sim = ThingMagicSim(
        port, ctx.scenario, antennas, model=model, seed=ctx.seed, clock=ctx.clock, faults=faults
    )
    plan = ", ".join(f'{a.port} = "{a.zone}"' for a in antennas)
    toml = (
        f'[[readers]]\nid = "door"\ndriver = "thingmagic"\nport = "{port.path}"\n'
        f"baudrate = 115200\nantennas = {{ {plan} }}\n"
    )
    return [SimDevice("door", port, lambda: _with_incidents(sim, args.incident_every), toml)]


async def _with_incidents(sim: ThingMagicSim, every_s: float) -> None:
    if every_s <= 0:
        await sim.run()
        return
    async with asyncio.TaskGroup() as tg:
        incidents = tg.create_task(random_incidents(sim, every_s, random.Random(every_s)))
        await sim.run()
        incidents.cancel()


async def random_incidents(sim: ThingMagicSim, every_s: float, rng: random.Random) -> None:
    """One random one-off fault about every ``every_s`` seconds, to watch the daemon recover."""
    while True:
        await asyncio.sleep(rng.expovariate(1 / every_s))
        match rng.randrange(4):
            case 0:
                sim.stall(3.0)
            case 1:
                await sim.hang_up(down_s=1.0)
            case 2:
                await sim.send_boot_frame()
            case _:
                await sim.send_warning()


def em4100_reader(args: argparse.Namespace, ctx: RunContext) -> list[SimDevice]:
    """An RDM6300-style 125 kHz card reader at the entrance (the first zone)."""
    zone = ctx.scenario.zones[0]
    port = SimPort(ctx.link_dir, "cards", seed=ctx.seed + 7)
    port.open()
    faults = Faults(garbage_rate=args.garbage_rate, corrupt_rate=args.corrupt_rate)
    sim = Em4100Sim(port, ctx.scenario, zone, seed=ctx.seed + 7, clock=ctx.clock, faults=faults)
    toml = f'[[readers]]\nid = "cards"\ndriver = "em4100"\nport = "{port.path}"\nzone = "{zone}"\n'
    return [SimDevice("cards", port, sim.run, toml)]


def shelf_display(args: argparse.Namespace, ctx: RunContext) -> list[SimDevice]:
    """A two-line serial display at the first shelf, for the daemon's rules to write to."""
    zone = ctx.scenario.zones[1] if len(ctx.scenario.zones) > 1 else ctx.scenario.zones[0]
    name = f"{zone}-display"
    port = SimPort(ctx.link_dir, name, seed=ctx.seed + 11)
    port.open()
    sim = DisplaySim(port, lines=2)
    toml = (
        f'[[outputs]]\nid = "{name}"\ndriver = "serial-display"\nport = "{port.path}"\n'
        "lines = 2\nline_length = 20\n"
    )
    return [SimDevice(name, port, sim.run, toml)]


DEVICE_BUILDERS: list[DeviceBuilder] = [
    thingmagic_reader,
    em4100_reader,
    scale_device,
    shelf_display,
]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m firmware_sim",
        description="Simulated shop devices on pseudo-terminals, for a daemon to talk to.",
    )
    p.add_argument("--dir", type=Path, help="where the device symlinks go (default: a temp dir)")
    p.add_argument("--seed", type=int, default=1, help="draws the scenario (default 1)")
    p.add_argument(
        "--broker", default="mqtt://127.0.0.1:1883", metavar="URL",
        help="mqtt.url of the printed config (default mqtt://127.0.0.1:1883)",
    )  # fmt: skip
    p.add_argument("--duration", type=float, help="seconds to run (default: until Ctrl-C)")
    p.add_argument("--scenario-length", type=float, default=3600.0,
                   help="seconds of scenario to draw when --duration is not given")  # fmt: skip
    p.add_argument("--zones", default="entrance,shelf-a,shelf-b",
                   help="comma-separated zone ids; the first is the entrance")  # fmt: skip
    p.add_argument("--customers", type=int, default=10, help="customers in the scenario")
    p.add_argument("--items", type=int, default=12, help="tagged items on the shelves")
    p.add_argument("--card-customers", type=int, default=3,
                   help="customers with 125 kHz EM4100 cards, read at the entrance")  # fmt: skip
    p.add_argument(
        "--customer-prefix", default="C0FFEE",
        help="hex prefix of the UHF loyalty cards' EPCs (tags.customer_prefixes)",
    )  # fmt: skip
    p.add_argument(
        "--scale-zones", help="zones with a shelf scale, comma-separated (default: all shelves)"
    )
    p.add_argument("--scale-noise-g", type=float, default=None, help="scale noise, grams (sd)")
    p.add_argument("--truth", type=Path, help="write the ground truth JSON here")
    p.add_argument("--miss-rate", type=float, default=0.1, help="per-read miss probability")
    p.add_argument("--burst-miss", type=float, default=0.6,
                   help="probability that a miss is followed by another")  # fmt: skip
    p.add_argument("--bleed-rate", type=float, default=2.0,
                   help="reads per second of a tag by a neighbouring zone's antenna")  # fmt: skip
    p.add_argument("--garbage-rate", type=float, default=0.0, help="fault: noise before frames")
    p.add_argument("--corrupt-rate", type=float, default=0.0, help="fault: frames with bad CRC")
    p.add_argument("--bytewise", action="store_true", help="fault: byte-at-a-time delivery")
    p.add_argument("--incident-every", type=float, default=0.0, metavar="S",
                   help="fault: a random stall, hang-up, reboot or 0x0505 warning about every "
                   "S seconds")  # fmt: skip
    return p


def options(**overrides: object) -> argparse.Namespace:
    """The command line's defaults with ``overrides``: builder input for callers without argv.

    ``silentgate demo`` uses this, so that a builder added later finds its own defaults.
    """
    args = parser().parse_args([])
    for name, value in overrides.items():
        if not hasattr(args, name):
            raise TypeError(f"no simulator option {name!r}")
        setattr(args, name, value)
    return args
