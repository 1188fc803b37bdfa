"""systemd's notify protocol (sd_notify(3)): READY=1, WATCHDOG=1, STOPPING=1, STATUS=...,
RELOADING=1 with MONOTONIC_USEC=..., EXTEND_TIMEOUT_USEC=... (a start that is slow but making
progress asks for more time).

Twenty lines of datagram socket do not justify a dependency. Without ``NOTIFY_SOCKET`` (not
started by systemd, or ``Type=simple``) every call is a no-op.
"""

from __future__ import annotations

import logging
import os
import socket
import time

# Named, not __name__: the journal shows this name on every line, wherever the module lives.
log = logging.getLogger("gateway.notify")


class Notifier:
    def __init__(self, address: str | None = None) -> None:
        address = address if address is not None else os.environ.get("NOTIFY_SOCKET")
        self._address = ("\0" + address[1:]) if address and address[0] == "@" else address
        usec = os.environ.get("WATCHDOG_USEC")
        pid = os.environ.get("WATCHDOG_PID")
        watchdog = usec is not None and (pid is None or pid == str(os.getpid()))
        # Ping at half the interval, as sd_watchdog_enabled(3) recommends.
        self.watchdog_interval_s = int(usec) / 2e6 if watchdog and usec else None
        self.reloading = False  # a stop that is part of a reload must not say STOPPING

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def notify(self, *fields: str) -> None:
        if not self._address:
            return
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            try:
                sock.connect(self._address)
                sock.sendall("\n".join(fields).encode())
            except OSError as exc:  # the manager went away: nobody to tell, nothing to stop for
                log.debug("sd_notify to %s failed: %s", self._address, exc)

    def ready(self, status: str) -> None:
        self.notify("READY=1", f"STATUS={status}")

    def starting(self, status: str, more_s: float) -> None:
        """Still starting: shown by ``systemctl status``, and at least ``more_s`` more seconds
        before systemd's start timeout may fire."""
        self.notify(f"EXTEND_TIMEOUT_USEC={int(more_s * 1e6)}", f"STATUS={status}")

    def watchdog(self) -> None:
        self.notify("WATCHDOG=1")

    def stopping(self) -> None:
        if not self.reloading:
            self.notify("STOPPING=1", "STATUS=stopping")

    def reload_started(self) -> None:
        """RELOADING=1 with the time it began: systemd 253 and later ignore it without
        MONOTONIC_USEC (CLOCK_MONOTONIC in microseconds), and ``systemctl reload`` would then
        return before the reload is done."""
        self.reloading = True
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}", "STATUS=reloading the config")
