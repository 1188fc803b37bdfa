"""``silentgate run`` whose pipeline fails when a trigger file appears: a stand-in for any part
of the daemon failing on its own (not by a signal), which cancels the uplink through the daemon's
task group. Run as ``python -m tests.integration.crashing_gateway TRIGGER run --config FILE``."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from gateway import pipeline
from gateway.cli import main


class InjectedFailure(RuntimeError):
    pass


def fail_when(trigger: Path) -> None:
    original = pipeline.Pipeline.run

    async def run(self: pipeline.Pipeline) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(original(self))
            while not trigger.exists():
                await asyncio.sleep(0.05)
            raise InjectedFailure(f"{trigger} appeared")

    pipeline.Pipeline.run = run  # type: ignore[method-assign]  # the injected fault


if __name__ == "__main__":
    fail_when(Path(sys.argv[1]))
    sys.exit(main(sys.argv[2:]))
