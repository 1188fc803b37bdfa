"""``python -m firmware_sim``: simulated readers on pseudo-terminals, for a daemon to talk to.

Draws a scenario from a seed, starts every simulated device on its own pty (stable paths in
``--dir``), prints the paths and a config snippet that points the daemon at them, writes the
ground truth to ``--truth``, and runs until Ctrl-C or ``--duration``.

Devices come from ``firmware_sim.station.DEVICE_BUILDERS``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from firmware_sim.scenario import Scenario, ScenarioClock
from firmware_sim.station import (
    DEVICE_BUILDERS,
    RunContext,
    SimDevice,
    neighbours_in_a_row,
    options,
    parser,
    random_incidents,
)

# Builders and their types live in firmware_sim.station; these names stay importable from here.
__all__ = ["RunContext", "SimDevice", "main", "neighbours_in_a_row", "options", "random_incidents"]


async def _run(args: argparse.Namespace, link_dir: Path) -> None:
    zones = tuple(z.strip() for z in args.zones.split(",") if z.strip())
    length = args.duration or args.scenario_length
    scenario = Scenario.generate(
        seed=args.seed, duration=length, zones=zones, customers=args.customers,
        items=args.items, customer_prefix=args.customer_prefix,
        card_customers=args.card_customers,
    )  # fmt: skip
    if args.truth:
        args.truth.write_text(scenario.to_json())
    ctx = RunContext(scenario, link_dir, ScenarioClock(), args.seed)
    devices = [d for build in DEVICE_BUILDERS for d in build(args, ctx)]
    for device in devices:
        print(f"{device.id}: {device.port.path} -> {device.port.device}")
    print("\n# config for the daemon\n" + "\n".join(d.toml for d in devices), flush=True)
    try:
        async with asyncio.timeout(args.duration), asyncio.TaskGroup() as tg:
            for device in devices:
                tg.create_task(device.run())
    except TimeoutError:
        pass
    finally:
        for device in devices:
            device.port.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    with contextlib.ExitStack() as stack:
        link_dir = args.dir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        link_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_run(args, link_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
