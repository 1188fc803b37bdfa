"""The health of whatever sits at an end of the flow: a device that reads, an output that acts.

Both report the same states to the same listener (the daemon's status), so both take them from
here, and neither knows the other. ``Health`` is what they share: the current state and its
detail, logged and passed on only when they change.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable


class DeviceState(enum.StrEnum):
    STARTING = "starting"
    OK = "ok"
    DOWN = "down"
    ERROR = "error"  # the device answers but reports a fault (e.g. antenna return loss)


StateListener = Callable[[str, DeviceState, str | None], None]


class Health:
    """``state`` and ``detail`` of one device or output, named ``name`` to the listener.

    A base class of ``DeviceContext`` and ``OutputSession``, so that a session and the daemon
    read ``state`` and call ``set_state`` on the object they already hold."""

    def __init__(self, name: str, log: logging.Logger, on_state: StateListener) -> None:
        self.state = DeviceState.STARTING
        self.detail: str | None = None
        self._health_name = name
        self._health_log = log
        self._on_state = on_state

    def set_state(self, state: DeviceState, detail: str | None = None) -> None:
        if state == self.state and detail == self.detail:
            return
        self.state, self.detail = state, detail
        level = logging.INFO if state == DeviceState.OK else logging.WARNING
        self._health_log.log(level, "%s%s", state.value, f": {detail}" if detail else "")
        self._on_state(self._health_name, state, detail)
