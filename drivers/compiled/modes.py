"""The one decorator for compiled loops, and how they run in this process.

A kernel is a plain Python function over numpy arrays and scalars, written so that numba can
compile it. ``@kernel`` registers it and returns what runs, chosen once per process, when the
first kernel is declared:

* ``compiled``: the build made ahead of time by ``silentgate build-kernels`` for exactly these
  sources (``places``), loaded as an extension module. Nothing is compiled, numba and llvmlite
  are not even imported, and it runs under ``MemoryDenyWriteExecute=yes``.
* ``jit``: numba compiles each kernel on its first call, cached on disk when a writable cache
  directory exists; a first start pays the compile. Needs memory that is written, then
  executed: where that is refused (``wx``) this mode is never chosen and numba never imported.
* ``python``: the functions as they are written: correct, tens of times slower. The last
  resort, where numba cannot be had (32-bit Raspberry Pi OS has no wheel) and no build exists.

``SILENTGATE_KERNELS`` = ``auto`` (the default: the first of these that works) or one of the
three, which then must work (``KernelError`` otherwise). ``NUMBA_DISABLE_JIT=1`` means
``python``, as numba itself reads it. ``describe()`` says which mode runs and why.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, TypeVar, cast

from drivers.compiled import extension, places
from drivers.compiled.wx import write_execute_allowed
from drivers.errors import KernelError

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
ENV: Final = "SILENTGATE_KERNELS"


class Mode(StrEnum):
    COMPILED = "compiled"
    JIT = "jit"
    PYTHON = "python"


@dataclass(frozen=True, slots=True)
class Choice:
    mode: Mode
    why: str
    build: extension.Extension | None = None
    jit_cache: Path | None = None  # numba's cache directory; None: compiled in memory only


# Every kernel declared so far: qualified name -> (the Python function, what runs).
REGISTRY: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {}
_choice: Choice | None = None


def kernel(fn: F) -> F:
    name = f"{fn.__module__}.{fn.__qualname__}"
    bound = _bind(choice(), name, fn)
    REGISTRY[name] = (fn, bound)
    return cast(F, bound)


def choice() -> Choice:
    global _choice  # noqa: PLW0603  (one choice per process, made when the first kernel is declared)
    if _choice is None:
        _choice = _choose(os.environ.get(ENV, "auto"))
        log.debug("kernels: %s", describe())
    return _choice


def describe() -> str:
    """One line for logs, status and doctor: ``compiled (...)``, ``jit (...)``, ``python (...)``."""
    c = choice()
    return f"{c.mode} ({c.why})"


def use(mode: Mode, *, cache: bool = True) -> Choice:
    """Force a mode before any kernel is declared (the build compiles with a fresh JIT)."""
    global _choice  # noqa: PLW0603
    if REGISTRY:
        raise KernelError("kernels are already declared: choose the mode before importing them")
    _choice = _jit(cache) if mode is Mode.JIT else _choose(mode.value)
    return _choice


def _choose(wanted: str) -> Choice:
    if os.environ.get("NUMBA_DISABLE_JIT") == "1" or wanted == Mode.PYTHON:
        return Choice(Mode.PYTHON, "as asked" if wanted == Mode.PYTHON else "NUMBA_DISABLE_JIT=1")
    if wanted not in ("auto", Mode.COMPILED, Mode.JIT):
        raise KernelError(f"{ENV}={wanted!r}: expected auto, compiled, jit or python")
    if wanted != Mode.JIT:
        build, missing = _find_build()
        if build is not None:
            return Choice(Mode.COMPILED, f"built ahead of time, {build.directory}", build)
        if wanted == Mode.COMPILED:
            raise KernelError(f"{ENV}=compiled: {missing}")
    why = _jit_refused()
    if why is None:
        jit = _jit(cache=True)
        note = "" if wanted == Mode.JIT else "; no compiled build for this version"
        return Choice(jit.mode, jit.why + note, jit_cache=jit.jit_cache)
    if wanted == Mode.JIT:
        raise KernelError(f"{ENV}=jit: {why}")
    return Choice(Mode.PYTHON, f"{why}; run `silentgate build-kernels` for compiled kernels")


def _find_build() -> tuple[extension.Extension | None, str]:
    """The first build for these sources; else None and why (a damaged one is also logged)."""
    problems = []
    for base in places.candidates():
        directory = places.compiled_dir(base)
        if not (directory / extension.MANIFEST).is_file():
            continue
        try:
            return extension.load(directory, places.digest()), ""
        except KernelError as exc:
            log.warning("compiled kernels unusable: %s", exc)
            problems.append(str(exc))
    where = ", ".join(str(base) for base in places.candidates())
    return None, "; ".join(problems) or f"no build for this version in {where}"


def _jit_refused() -> str | None:
    """Why numba cannot compile here, or None."""
    if not write_execute_allowed():
        return "memory may not be written and executed (MemoryDenyWriteExecute), so no JIT"
    try:
        import numba  # noqa: F401, PLC0415  (only this mode imports it: 57 MB of RSS)
    except ImportError:
        return "numba is not installed (no wheel for this platform?)"
    except OSError as exc:  # llvmlite's own check of executable memory, SELinux and the like
        return f"numba cannot run here: {exc}"
    return None


def _jit(cache: bool) -> Choice:
    import numba  # noqa: PLC0415

    base = places.first_writable() if cache else None
    if base is None:
        # Without a writable directory numba would refuse to declare the kernels at all.
        why = "compiled at each start: no writable cache directory" if cache else "not cached"
        return Choice(Mode.JIT, why)
    directory = places.version_dir(base)
    # Read by numba when each kernel is declared, so set before the first one.
    numba.config.CACHE_DIR = str(directory)  # type: ignore[attr-defined]  # set from the env
    return Choice(Mode.JIT, f"numba, cached in {directory}", jit_cache=directory)


def _bind(c: Choice, name: str, fn: F) -> Callable[..., Any]:
    if c.mode is Mode.COMPILED:
        assert c.build is not None
        exports = c.build.exports.get(name)
        if exports is None:  # declared by a module the build did not see: run it as written
            log.warning("kernel %s is not in the compiled build; running it as Python", name)
            return fn
        return extension.Guarded(name, exports, fn)
    if c.mode is Mode.JIT:
        from numba import njit  # noqa: PLC0415

        return cast(F, njit(cache=c.jit_cache is not None, nogil=True, error_model="numpy")(fn))
    return fn
