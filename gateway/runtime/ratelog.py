"""Log lines about input a sender controls, at most one per kind a window.

The journal's ``RepeatFilter`` (``gateway.runtime.logs``) already folds repeats, but only after a
``LogRecord`` was built, which costs more than refusing a bad command does: under a flood of
thousands of messages a second the logging would be most of the work. ``Throttle`` decides
first, from a counter per key: the first line of a key is logged, the rest of its window is
counted, and the next line says how many were left out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Final

WINDOW_S: Final = 60.0
MAX_KEYS: Final = 256  # keys are codes from a fixed set; this only bounds a mistake


class Throttle:
    def __init__(
        self,
        logger: logging.Logger,
        level: int,
        *,
        window_s: float = WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log, self._level = logger, level
        self._window, self._clock = window_s, clock
        self._seen: dict[str, tuple[float, int]] = {}  # key -> (logged at, left out since)

    def __call__(self, key: str, message: str, *args: object) -> None:
        """Log ``message % args`` unless ``key`` was logged within the window."""
        if not self._log.isEnabledFor(self._level):
            return
        now = self._clock()
        logged_at, left_out = self._seen.get(key, (-self._window, 0))
        if now - logged_at < self._window:
            self._seen[key] = (logged_at, left_out + 1)
            return
        if len(self._seen) >= MAX_KEYS:
            self._seen.clear()
        self._seen[key] = (now, 0)
        if left_out:
            message += f" ({left_out} more in the last {self._window:.0f} s)"
        self._log.log(self._level, message, *args)
