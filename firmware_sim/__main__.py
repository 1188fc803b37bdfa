"""``python -m firmware_sim``: simulated readers on pseudo-terminals, for a daemon to talk to.

Draws a scenario from a seed, starts every simulated device on its own pty (stable paths in
``--dir``), prints the paths and a whole config that points the daemon at them (site, broker,
storage and a pseudonym secret in ``--dir``, then the devices), writes the
ground truth to ``--truth``, and runs until Ctrl-C or ``--duration``.

Devices come from ``firmware_sim.station.DEVICE_BUILDERS``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
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
    config = _config_head(args, link_dir) + "\n".join(d.toml for d in devices)
    print("\n# config for the daemon\n" + config, flush=True)
    try:
        async with asyncio.timeout(args.duration), asyncio.TaskGroup() as tg:
            for device in devices:
                tg.create_task(device.run())
    except TimeoutError:
        pass
    finally:
        for device in devices:
            device.port.close()


def _config_head(args: argparse.Namespace, link_dir: Path) -> str:
    """What a config needs besides the devices: a site, the broker, storage in ``link_dir``,
    and a pseudonym secret made for this run (the daemon refuses to start without one)."""
    secret = link_dir / "secret"
    if not secret.exists():
        fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_hex(32) + "\n")
    return f"""[site]
store = "sim-store"
gateway = "gw-1"

[mqtt]
url = {json.dumps(args.broker)}

[storage]
path = {json.dumps(str(link_dir / "state" / "outbox.db"))}

[privacy]
secret_file = {json.dumps(str(secret))}

[tags]
customer_prefixes = [{json.dumps(args.customer_prefix)}]

"""


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
