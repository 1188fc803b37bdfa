"""Every configured output, built from its config and run under supervision.

The daemon keeps one ``Outputs``: ``run`` holds a supervised loop per output (each reopens its
port or connection with backoff, and reports ``down`` when it fails). ``Outputs`` is a mapping
of output id to session, so it is what ``CommandRouter`` takes as its executors: each session
implements ``OutputExecutor``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Mapping
from typing import assert_never

from gateway.config.outputs import (
    OpenEPaperLinkOutput,
    OutputConfig,
    RelayOutput,
    SerialDisplayOutput,
)
from gateway.health import DeviceState, StateListener
from gateway.outputs.base import Output
from gateway.outputs.openepaperlink import LabelSession
from gateway.outputs.relay import RelaySession
from gateway.outputs.serial_display import DisplaySession
from gateway.runtime.supervise import supervised


def make_output(config: OutputConfig, on_state: StateListener) -> Output:
    match config:
        case RelayOutput():
            return RelaySession(config, on_state)
        case SerialDisplayOutput():
            return DisplaySession(config, on_state)
        case OpenEPaperLinkOutput():
            return LabelSession(config, on_state)
        case _:
            assert_never(config)


class Outputs(Mapping[str, Output]):
    def __init__(self, configs: Iterable[OutputConfig], on_state: StateListener) -> None:
        self._sessions = {c.id: make_output(c, on_state) for c in configs}

    def __getitem__(self, output_id: str) -> Output:
        return self._sessions[output_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._sessions)

    def __len__(self) -> int:
        return len(self._sessions)

    async def run(self) -> None:
        """Every output, until cancelled; one failing output never stops the others."""
        async with asyncio.TaskGroup() as tg:
            for session in self._sessions.values():
                tg.create_task(_supervise(session))


async def _supervise(session: Output) -> None:
    def failed(exc: BaseException) -> None:
        session.set_state(DeviceState.DOWN, str(exc) or type(exc).__name__)

    await supervised(f"output {session.id}", session.run, on_failure=failed)
