"""The one place that applies numba's decorator, so that mypy sees typed kernels.

Every kernel is compiled with ``cache=True``: the machine code lands in ``NUMBA_CACHE_DIR``
(systemd's CacheDirectory for the daemon) and a restart loads it instead of compiling again.
With ``NUMBA_DISABLE_JIT=1`` the same functions run as plain Python over numpy arrays.

numba checks a cached kernel against the modification time and size of the one file that
defines it. The presence kernel also compiles in functions from ``smoothing.py`` and ``zones.py``
and freezes the constants of ``layout.py``: an upgrade that changes only those would load stale
machine code. So the kernels are cached below a directory named for a digest of every source
file in this package; any change there is a new directory and a fresh compile, and
``prune_stale`` removes the directories of older versions.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final, TypeVar, cast

import numba
from numba import njit

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
PACKAGE: Final = Path(__file__).resolve().parent
PREFIX: Final = "kernels-"


def sources_digest(files: Iterable[Path]) -> str:
    """A short digest of the files' names and contents, in name order."""
    h = hashlib.sha256()
    for path in sorted(files, key=lambda p: p.name):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


DIGEST: Final = sources_digest(PACKAGE.glob("*.py"))


def cache_base() -> Path:
    """Where the versioned directories go: ``NUMBA_CACHE_DIR``, else beside the sources."""
    configured = os.environ.get("NUMBA_CACHE_DIR")
    return Path(configured) if configured else PACKAGE / "__pycache__"


def cache_dir() -> Path:
    return cache_base() / f"{PREFIX}{DIGEST}"


# Read by numba when each kernel below is decorated, so before any kernel module is imported
# (they all import this one first).
numba.config.CACHE_DIR = str(cache_dir())  # type: ignore[attr-defined]  # set from the environment at import


def kernel(fn: F) -> F:
    return cast(F, njit(cache=True, nogil=True, error_model="numpy")(fn))


def prune_stale() -> list[Path]:
    """Remove the cache directories of other kernel versions; returns what was removed."""
    removed = []
    base, current = cache_base(), cache_dir()
    for old in base.glob(f"{PREFIX}*"):
        if old != current and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
            removed.append(old)
    if removed:
        log.info("removed %d compiled kernel cache(s) of older versions", len(removed))
    return removed
