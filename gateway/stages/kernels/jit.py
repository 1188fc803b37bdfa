"""The decorator the gateway's kernels are declared with, and the pruning of old builds.

``kernel`` is ``drivers.compiled.kernel``: one decorator for every kernel in the project (the
ThingMagic stream scan in ``drivers`` too), so that one build (``gateway.service.build``)
compiles them all ahead of time and one choice per process decides how they run: compiled,
numba's JIT, or plain Python. mypy sees the functions as declared.
"""

from __future__ import annotations

from pathlib import Path

from drivers.compiled import Mode, choice, kernel, places

__all__ = ["kernel", "prune_stale"]


def prune_stale() -> list[Path]:
    """Remove other versions' kernels from the directory this process uses; returns them."""
    c = choice()
    if c.mode is Mode.COMPILED and c.build is not None:
        return places.prune(c.build.directory.parent.parent)
    if c.mode is Mode.JIT and c.jit_cache is not None:
        return places.prune(c.jit_cache.parent)
    return []
