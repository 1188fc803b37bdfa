"""Which sources a compiled kernel is made from, and where compiled kernels are kept.

Machine code is only as current as the sources it came from. A kernel freezes the constants of
the modules it imports (frame layouts, column numbers) and inlines the kernels it calls, so no
single file says whether a build is stale. The key is therefore a digest of every source file
of the project's packages, with the numpy version (the extension is built against its C API)
and the interpreter: any change there is a new directory and a new build, and ``prune`` removes
the directories of older versions.

Where: one base directory holds ``kernels-<digest>/`` (numba's cache files) and, inside it,
``compiled/`` (the ahead-of-time extension and its manifest). An explicit base
(``SILENTGATE_KERNELS_DIR``, else numba's own ``NUMBA_CACHE_DIR``) is the only candidate.
Otherwise, in order: systemd's ``CACHE_DIRECTORY`` (under the units), the package's own
``__pycache__`` (a checkout; a venv built by root at install), the user's cache directory (not
under systemd), and the units' cache directory (so that a start by hand, or ``doctor``, finds
what the build unit made). A build goes to the first candidate that can be written; a start
loads from the first that holds a build for these sources.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Final

import numpy as np

log = logging.getLogger(__name__)

PREFIX: Final = "kernels-"
COMPILED: Final = "compiled"
HERE: Final = Path(__file__).resolve().parent
# The project's packages: the kernels live in them and import their constants from them.
PROJECT_PACKAGES: Final = ("drivers", "gateway")
# systemd's CacheDirectory=silentgate, where the units keep the kernels (systemd/*.service).
SERVICE_CACHE: Final = Path("/var/cache/silentgate/kernels")


def project_sources() -> Iterator[Path]:
    root = HERE.parents[1]
    for package in PROJECT_PACKAGES:
        yield from (root / package).rglob("*.py")


def sources_digest(files: Iterable[Path], root: Path | None = None) -> str:
    """A short digest of the files' paths (below ``root``) and contents, in path order, with
    the numpy version and the interpreter's cache tag."""
    base = root or HERE.parents[1]
    h = hashlib.sha256(f"{np.__version__}\0{sys.implementation.cache_tag}\0".encode())
    for path in sorted(files):
        name = path.relative_to(base).as_posix() if path.is_relative_to(base) else path.name
        h.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


_digest: str | None = None


def digest() -> str:
    """This installation's digest, computed once (about a hundred small files)."""
    global _digest  # noqa: PLW0603  (read once per process; the sources do not change under it)
    if _digest is None:
        _digest = sources_digest(project_sources())
    return _digest


def candidates() -> list[Path]:
    """Base directories in the order a start searches them and a build tries them."""
    for variable in ("SILENTGATE_KERNELS_DIR", "NUMBA_CACHE_DIR"):
        if os.environ.get(variable):
            return [Path(os.environ[variable])]
    systemd = os.environ.get("CACHE_DIRECTORY")
    found = [Path(systemd.split(":")[0]) / "kernels"] if systemd else []
    found.append(HERE / "__pycache__")  # a build made at install time, beside the code
    if not systemd:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        found.append(Path(xdg) / "silentgate")
    if SERVICE_CACHE.parent.is_dir():  # made by systemd: what the build unit left there
        found.append(SERVICE_CACHE)
    return list(dict.fromkeys(found))


def version_dir(base: Path) -> Path:
    return base / f"{PREFIX}{digest()}"


def compiled_dir(base: Path) -> Path:
    return version_dir(base) / COMPILED


def writable(base: Path) -> bool:
    """Can this version's directory be created below ``base`` and written?"""
    target = version_dir(base)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(target, os.W_OK | os.X_OK)


def first_writable() -> Path | None:
    return next((base for base in candidates() if writable(base)), None)


def prune(base: Path) -> list[Path]:
    """Remove the directories of other versions below ``base``; returns what was removed."""
    current = version_dir(base)
    removed = []
    for old in sorted(base.glob(f"{PREFIX}*")) if base.is_dir() else []:
        if old != current and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
            removed.append(old)
    if removed:
        log.info("removed %d compiled kernel director(ies) of older versions", len(removed))
    return removed
