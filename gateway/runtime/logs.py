"""Logging to stderr, one line per record, in a form journald stores well.

Under systemd (``JOURNAL_STREAM`` set) lines start with the syslog priority prefix ``<N>`` so that
``journalctl -p warning`` works, and carry no timestamp (the journal adds its own). Elsewhere each
line starts with a timestamp. Either way the line names the level and the component.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from typing import Final

_PRIORITY: Final = {"DEBUG": 7, "INFO": 6, "WARNING": 4, "ERROR": 3, "CRITICAL": 2}
REPEAT_WINDOW_S: Final = 60.0
# ``extra=LIFECYCLE``: a line of the daemon's life (starting, ready, connected, reloading,
# stopping, stopped) that the repeat filter never holds back: a reload is a stop and a start
# seconds apart, and the journal must show both.
LIFECYCLE: Final = {"lifecycle": True}


class RepeatFilter(logging.Filter):
    """Lets a message through once per window; its repeats inside the window are counted and
    the count is added to the next one let through ("... (12 more in the last 60 s)").

    A message is its logger and format string, so "port %s closed" for one device repeats while
    other devices' lines still pass. The journal of a Pi nobody visits stays readable.
    """

    def __init__(
        self, window_s: float = REPEAT_WINDOW_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self._window = window_s
        self._clock = clock
        self._seen: dict[tuple[str, str, object], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "lifecycle", False):
            return True
        # The first argument tells devices apart ("port %s closed"); the rest may vary.
        first_arg = record.args[0] if isinstance(record.args, tuple) and record.args else None
        key = (record.name, str(record.msg), first_arg)
        now = self._clock()
        first, suppressed = self._seen.get(key, (-self._window - 1.0, 0))
        if now - first < self._window:
            self._seen[key] = (first, suppressed + 1)
            return False
        if suppressed:
            record.msg = f"{record.msg} ({suppressed} more in the last {self._window:.0f} s)"
        self._seen[key] = (now, 0)
        if len(self._seen) > 10_000:  # bound the memory of a pathological logger
            self._seen.clear()
        return True


class _JournalFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record).replace("\n", " | ")
        return f"<{_PRIORITY.get(record.levelname, 6)}>{line}"


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("JOURNAL_STREAM"):
        handler.setFormatter(_JournalFormatter("%(levelname)s %(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RepeatFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Library chatter below WARNING is ours to summarise, not to repeat.
    for name in ("asyncio", "aiomqtt", "pymodbus", "numba"):
        logging.getLogger(name).setLevel(logging.WARNING)
