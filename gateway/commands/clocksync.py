"""Whether the wall clock can be trusted to judge a command's ``expires_at``.

A Raspberry Pi has no battery-backed clock: after a power cut it starts from the last time it
saved and runs from there until NTP (systemd-timesyncd, chrony) corrects it, which can be hours
later on a shop network that blocks NTP. A clock an hour behind would run a command that
expired ten minutes ago. Linux knows whether the clock is disciplined: ``adjtimex(2)`` with no
modes set only reads, and returns ``TIME_ERROR`` while the kernel's ``STA_UNSYNC`` (or
``STA_CLOCKERR``) flag is set, which is what ``timedatectl`` shows as "System clock synchronized:
no". Where the call is unavailable (not Linux, a sandbox that forbids it) the clock counts as not
synchronised: refusing an expiring command is the safe side.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Final

TIME_ERROR: Final = 5  # <sys/timex.h>: clock not synchronised
_TIMEX_BYTES: Final = 512  # struct timex is 208 bytes on 64-bit Linux; zeroed means "read only"


def clock_synchronised() -> bool:
    """True when the kernel reports the system clock synchronised (NTP or PTP disciplined)."""
    try:
        state = _libc().adjtimex(ctypes.create_string_buffer(_TIMEX_BYTES))
    except (OSError, AttributeError):
        return False
    return bool(state >= 0 and state != TIME_ERROR)


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
