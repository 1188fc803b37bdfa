"""The one place that applies numba's decorator, so that mypy sees typed kernels.

Every kernel is compiled with ``cache=True``: the machine code lands in ``NUMBA_CACHE_DIR``
(systemd's CacheDirectory for the daemon) and a restart loads it instead of compiling again.
With ``NUMBA_DISABLE_JIT=1`` the same functions run as plain Python over numpy arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from numba import njit

F = TypeVar("F", bound=Callable[..., Any])


def kernel(fn: F) -> F:
    return cast(F, njit(cache=True, nogil=True, error_model="numpy")(fn))
