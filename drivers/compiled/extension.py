"""A build of the kernels ahead of time: a CPython extension module and its manifest.

``silentgate build-kernels`` compiles every kernel for the argument types the daemon calls it
with into one shared object, ``_silentgate_kernels``, and writes ``manifest.json`` beside it:
for each kernel (by module and name) its exports and, for each export, the types it was
compiled for. The extension needs neither numba nor llvmlite at run time, and the dynamic
loader maps its code from the file, so it runs where memory may not be written and executed.

An export trusts its arguments: an array of another dtype or shape is read as if it were the
compiled one (the process dies, no exception). So each call is guarded here, as numba's
dispatcher does: the arguments must be exactly what some export was built for (dtype, number
of dimensions, contiguity and writability of arrays; bool, int, float or numpy scalar type),
and anything else runs the kernel's Python function instead, correct and slow, logged once.

The manifest is read as hostile input (a damaged cache directory must not crash a start): it is
bounded in size, checked field by field, and any problem makes the whole build unusable.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from drivers.errors import KernelError

log = logging.getLogger(__name__)

MODULE: Final = "_silentgate_kernels"
MANIFEST: Final = "manifest.json"
FORMAT: Final = 1
MAX_MANIFEST_BYTES: Final = 1 << 20
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1

# ndarray.flags.num bits (numpy's NPY_ARRAY_* flags)
C_CONTIGUOUS, F_CONTIGUOUS, ALIGNED, WRITEABLE = 0x1, 0x2, 0x100, 0x400
LAYOUTS: Final = {"C": C_CONTIGUOUS, "F": F_CONTIGUOUS, "A": 0}
SCALARS: Final[dict[str, tuple[type, ...]]] = {
    # What numba's typeof types as each scalar; a Python int also needs to fit in 64 bits.
    "bool": (bool, np.bool_),
    "int64": (int, np.int64),
    "float64": (float, np.float64),
}


@dataclass(frozen=True, slots=True)
class ArrayArg:
    index: int
    dtype: np.dtype[Any]
    ndim: int
    flags: int  # every bit here must be set: contiguity, alignment, writability if written


@dataclass(frozen=True, slots=True)
class ScalarArg:
    index: int
    types: tuple[type, ...]


def arg_for(index: int, spec: object) -> ArrayArg | ScalarArg:
    """A manifest's argument type: a scalar's dtype name ("int64"), or an array's
    [dtype, ndim, layout, mutable]."""
    try:
        if isinstance(spec, str):
            return ScalarArg(index, SCALARS.get(spec) or (np.dtype(spec).type,))
        if isinstance(spec, list) and len(spec) == 4:
            dtype, ndim, layout, mutable = spec
            if (
                isinstance(dtype, str) and type(ndim) is int and 0 < ndim <= 32
                and layout in LAYOUTS and type(mutable) is bool
            ):  # fmt: skip
                flags = LAYOUTS[layout] | ALIGNED | (WRITEABLE if mutable else 0)
                return ArrayArg(index, np.dtype(dtype), ndim, flags)
    except TypeError:  # not a dtype numpy knows
        pass
    raise KernelError(f"unreadable argument type in the manifest: {spec!r}"[:200])


@dataclass(frozen=True, slots=True)
class Export:
    """One compiled signature. ``accepts`` runs on every call, so it is written for speed: the
    arrays first (a kernel's arguments are mostly arrays), one flags word per array."""

    function: Callable[..., Any]
    nargs: int
    arrays: tuple[ArrayArg, ...]
    scalars: tuple[ScalarArg, ...]

    @classmethod
    def of(cls, function: Callable[..., Any], specs: list[object]) -> Export:
        args = [arg_for(i, spec) for i, spec in enumerate(specs)]
        arrays = tuple(a for a in args if isinstance(a, ArrayArg))
        scalars = tuple(a for a in args if isinstance(a, ScalarArg))
        return cls(function, len(args), arrays, scalars)

    def accepts(self, args: Sequence[object]) -> bool:
        if len(args) != self.nargs:
            return False
        for spec in self.arrays:
            a = args[spec.index]
            if not (
                isinstance(a, np.ndarray) and (a.dtype is spec.dtype or a.dtype == spec.dtype)
                and a.ndim == spec.ndim and a.flags.num & spec.flags == spec.flags
            ):  # fmt: skip
                return False
        for scalar in self.scalars:
            v = args[scalar.index]
            if type(v) not in scalar.types or (type(v) is int and not INT64_MIN <= v <= INT64_MAX):
                return False
        return True


class Guarded:
    """A kernel's exports, tried in order; arguments that none was built for run ``python``."""

    def __init__(self, name: str, exports: Sequence[Export], python: Callable[..., Any]) -> None:
        self.__name__ = self.__qualname__ = name.rsplit(".", 1)[-1]
        self.__wrapped__ = python
        self.name = name
        self.exports = tuple(exports)
        self.python = python
        self.fallbacks = 0

    def __call__(self, *args: object) -> Any:
        for export in self.exports:
            if export.accepts(args):
                return export.function(*args)
        if not self.fallbacks:
            types = ", ".join(_describe(a) for a in args)
            log.warning("kernel %s: no compiled version for (%s); running it as Python",
                        self.name, types)  # fmt: skip
        self.fallbacks += 1
        return self.python(*args)


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.dtype}[{value.ndim}d{'' if value.flags.c_contiguous else ', strided'}]"
    return type(value).__name__


@dataclass(frozen=True, slots=True)
class Extension:
    """A loaded build: each kernel's exports, by the kernel's qualified name."""

    directory: Path
    exports: dict[str, tuple[Export, ...]]


def read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_MANIFEST_BYTES + 1)
    except OSError as exc:
        raise KernelError(f"no compiled build in {directory} ({exc.strerror})") from exc
    if len(raw) > MAX_MANIFEST_BYTES:
        raise KernelError(f"{path} is larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        manifest = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise KernelError(f"{path} is not JSON: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise KernelError(f"{path}: not a manifest of format {FORMAT}")
    return manifest


def load(directory: Path, digest: str) -> Extension:
    """The build in ``directory``, if it is complete and made from these sources (``digest``)."""
    manifest = read_manifest(directory)
    if manifest.get("digest") != digest:
        raise KernelError(f"the build in {directory} was made from other sources")
    kernels = manifest.get("kernels")
    if not isinstance(kernels, dict):
        raise KernelError(f"{directory / MANIFEST}: no kernels")
    module = _import(directory / str(manifest.get("file", "")))
    return Extension(directory, {str(k): _exports(module, v) for k, v in kernels.items()})


def _exports(module: object, entries: object) -> tuple[Export, ...]:
    if not isinstance(entries, list):
        raise KernelError("a kernel's exports are not a list")
    out = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("args"), list):
            raise KernelError(f"unreadable export in the manifest: {entry!r}"[:200])
        function = getattr(module, str(entry.get("export")), None)
        if not callable(function):
            raise KernelError(f"the extension lacks export {entry.get('export')!r}"[:200])
        out.append(Export.of(function, entry["args"]))
    return tuple(out)


def _import(path: Path) -> object:
    if not path.name.startswith(MODULE) or not path.is_file():
        raise KernelError(f"no extension module at {path}")
    loader = importlib.machinery.ExtensionFileLoader(MODULE, str(path))
    spec = importlib.util.spec_from_file_location(MODULE, path, loader=loader)
    if spec is None:
        raise KernelError(f"cannot import {path}")
    try:
        module = importlib.util.module_from_spec(spec)  # dlopen happens here
        loader.exec_module(module)
    except ImportError as exc:  # another interpreter's or machine's build, a damaged file
        raise KernelError(f"cannot load {path}: {exc}") from exc
    return module
