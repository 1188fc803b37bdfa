"""The daemon's life in one process: start, reload on SIGHUP, stop on SIGTERM or SIGINT.

A reload first validates the new file; a config with problems is logged, line by line, and the
daemon keeps running on the old one. A valid one stops the running daemon the way SIGTERM would
(readers stop, the pipeline is flushed into the outbox, the uplink drains what it can) and starts
a new one on the new config. Nothing accepted is lost: the outbox carries it, ``seq`` continues.
What a reload does not carry over is presence: subjects still in a zone are entered anew.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from pathlib import Path

from gateway.config import Config, read_config
from gateway.errors import ConfigError
from gateway.runtime.logs import LIFECYCLE
from gateway.runtime.notify import Notifier

# Named, not __name__: the journal shows this name on every line, wherever the module lives.
log = logging.getLogger("gateway.lifecycle")


class Lifecycle:
    def __init__(self, file: Path, config: Config, notifier: Notifier) -> None:
        self.file = file
        self.config = config
        self.notifier = notifier
        self.reloads = 0
        self._stop = asyncio.Event()
        self._reload: Config | None = None
        self._wake = asyncio.Event()

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        loop.add_signal_handler(signal.SIGHUP, self.request_reload)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def request_reload(self) -> None:
        """SIGHUP: a good config is taken, one with problems is logged and refused."""
        _problems, start = self.prepare_reload()
        if start is not None:
            start()

    def prepare_reload(self) -> tuple[list[str], Callable[[], None] | None]:
        """Read the config file again: its problems (logged; the daemon keeps running on the
        previous config), or none and what starts the reload with it."""
        try:
            loaded = read_config(self.file)
        except ConfigError as exc:
            log.error("reload refused, still running on the previous config:", extra=LIFECYCLE)
            for problem in exc.problems:
                log.error("%s", problem, extra=LIFECYCLE)
            return [str(problem) for problem in exc.problems], None
        for warning in loaded.warnings:
            log.warning("%s", warning, extra=LIFECYCLE)
        return [], lambda: self._begin_reload(loaded.config)

    def _begin_reload(self, config: Config) -> None:
        log.info("reloading %s", self.file, extra=LIFECYCLE)
        self.notifier.reload_started()
        self._reload = config
        self._wake.set()

    async def run(self) -> None:
        # Imported here: numba and the drivers are not needed for --version or check-config.
        from gateway.service.daemon import Daemon  # noqa: PLC0415

        while True:
            daemon = Daemon(self.config, reload=self.prepare_reload)
            await daemon.serve(self._wait, self.notifier)
            if self._stop.is_set() or self._reload is None:
                return
            self.config, self._reload = self._reload, None
            self.reloads += 1
            self.notifier.reloading = False  # the new daemon says READY=1 when it is
            self._wake.clear()

    async def _wait(self) -> None:
        await self._wake.wait()
