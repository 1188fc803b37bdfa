"""Children of the demo that end when the demo does, however it ends.

The demo starts its broker and its daemon in their own sessions (Ctrl-C in a terminal must reach
the demo alone, which then stops them in order). The price: a demo killed outright (SIGKILL, an
OOM kill, a test's timeout) would leave both running, orphaned. Linux's parent-death signal
closes that gap: the kernel sends the child SIGTERM when the process that started it ends, and
SIGTERM is the orderly stop both of them already handle.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` for ``subprocess.Popen`` that arms the parent-death signal; None where
    the platform has none (the children then outlive a killed demo, as they did before).

    The kernel ties the signal to the thread that forks: call Popen from the thread that lives
    as long as the children should (the demo's main thread). What runs in the child between
    fork and exec is one prctl and one getppid through a function looked up before the fork:
    no lock another thread could hold, which is what makes a ``preexec_fn`` unsafe elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    prctl = ctypes.CDLL(name, use_errno=True).prctl  # looked up before the fork, not in the child
    parent = os.getpid()

    def arm() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died between the fork and the prctl
            os.kill(os.getpid(), signal.SIGTERM)

    return arm
