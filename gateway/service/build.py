"""``silentgate build-kernels``: every kernel compiled ahead of time into one extension module.

Steps, in a process of their own (the mode of a process is chosen before its first kernel):

1. numba's JIT, uncached, runs ``warm_up_kernels``: each kernel the daemon calls is compiled
   for the daemon's argument types, and each kernel they call for the types it is called with.
   Those signatures are what gets built; a declared kernel with none stops the build.
2. ``numba.pycc`` compiles them into ``_silentgate_kernels`` (one export per kernel and
   signature, numpy's error model as under the JIT, a generic CPU of this architecture so that
   an SD card moved to another Pi still runs) and links it with the C compiler; the manifest
   names each kernel's exports and their argument types (``drivers.compiled.extension``).
3. The build is staged beside its final place and renamed into it, then a fresh interpreter
   loads it as a start would and runs the warm-up on it; a build that fails that is removed.

numba.pycc is pending deprecation in numba; if it goes, the JIT remains (``drivers.compiled``)
and this step is what changes. It needs a C and C++ compiler and the Python headers
(Debian: ``apt install g++ python3-dev``) and writes nothing outside the kernels directory.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from drivers.compiled import Mode, extension, modes, places
from drivers.errors import KernelError
from gateway.errors import KernelBuildError

Say = Callable[[str], None]
NEEDS: Final = "a C/C++ compiler and the Python headers (Debian: apt install g++ python3-dev)"


@dataclass(frozen=True, slots=True)
class Built:
    directory: Path
    kernels: int
    exports: int
    seconds: float


def existing(base: Path | None = None) -> Path | None:
    """The directory of a complete build for these sources, or None (no numba imported)."""
    for candidate in [base] if base else places.candidates():
        with contextlib.suppress(KernelError):
            manifest = extension.read_manifest(places.compiled_dir(candidate))
            if manifest.get("digest") == places.digest():
                return places.compiled_dir(candidate)
    return None


def build(base: Path | None, say: Say) -> Built:
    started = time.monotonic()
    if base is None:
        base = places.first_writable()
        if base is None:
            where = ", ".join(map(str, places.candidates()))
            raise KernelBuildError(f"no writable directory for the build (tried {where})")
    elif not places.writable(base):
        raise KernelBuildError(f"cannot write below {base}")
    _check_toolchain()
    signatures = learn_signatures(say)
    final = places.compiled_dir(base)
    staging = final.with_name(f"{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        exports = _compile(signatures, staging, say)
        _publish(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    say(f"checking the build in a fresh interpreter ({final})")
    _verify(base, final)
    places.prune(base)
    return Built(final, len(signatures), exports, time.monotonic() - started)


def _check_toolchain() -> None:
    if os.environ.get("NUMBA_DISABLE_JIT") == "1":
        raise KernelBuildError("NUMBA_DISABLE_JIT=1 is set: numba cannot compile anything")
    if importlib.util.find_spec("numba") is None:
        raise KernelBuildError(
            "numba is not installed (no wheel for this platform: a 32-bit OS?); "
            "the daemon runs its kernels as plain Python"
        )
    include = Path(sysconfig.get_paths()["include"])
    if not (include / "Python.h").is_file():
        raise KernelBuildError(f"no Python.h in {include}: the build needs {NEEDS}")
    if not (shutil.which("gcc") or shutil.which("cc")) or not shutil.which("g++"):
        raise KernelBuildError(f"no C or C++ compiler on PATH: the build needs {NEEDS}")


def learn_signatures(say: Say) -> dict[str, list[Any]]:
    """Each declared kernel's numba signatures after a warm-up under a fresh JIT."""
    modes.use(Mode.JIT, cache=False)
    import gateway.service.daemon  # noqa: F401, PLC0415  (declares every kernel the daemon has)
    from gateway.service.warmup import warm_up_kernels  # noqa: PLC0415

    say(f"compiling {len(modes.REGISTRY)} kernels with numba's JIT to learn their types")
    warm_up_kernels()
    found = {name: _signatures(bound) for name, (_, bound) in modes.REGISTRY.items()}
    missing = sorted(name for name, sigs in found.items() if not sigs)
    if missing:
        raise KernelBuildError(
            "never compiled by warm_up_kernels, so their types are unknown: "
            + ", ".join(missing) + " (call them from gateway/service/warmup.py)"
        )  # fmt: skip
    return found


def _signatures(dispatcher: Any) -> list[Any]:
    return [dispatcher.overloads[args].signature for args in dispatcher.signatures]


def spec_of(numba_type: Any) -> str | list[object]:
    """A numba argument type as the manifest spells it (``extension.check_for``)."""
    from numba.core import types  # noqa: PLC0415
    from numba.np.numpy_support import as_dtype  # noqa: PLC0415

    if isinstance(numba_type, types.Array):
        t = numba_type
        return [as_dtype(t.dtype).name, t.ndim, t.layout, bool(t.mutable)]
    if isinstance(numba_type, types.Boolean | types.Integer | types.Float):
        return str(as_dtype(numba_type).name)
    raise KernelBuildError(f"an argument of type {numba_type} cannot be built ahead of time")


def _compile(signatures: dict[str, list[Any]], staging: Path, say: Say) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba.pycc: pending deprecation, known (docstring)
        pycc: Any = importlib.import_module("numba.pycc")

    staging.mkdir(parents=True)
    cc = pycc.CC(extension.MODULE)
    cc.output_dir = str(staging)
    manifest: dict[str, list[dict[str, object]]] = {}
    python = {name: fn for name, (fn, _) in modes.REGISTRY.items()}
    for name, sigs in sorted(signatures.items()):
        for sig in sigs:
            export = f"k{sum(len(v) for v in manifest.values())}"
            cc.export(export, sig)(python[name])
            manifest.setdefault(name, []).append(
                {"export": export, "args": [spec_of(t) for t in sig.args]}
            )
    count = sum(len(v) for v in manifest.values())
    say(f"compiling {count} exports ahead of time and linking them (the longest step)")
    with _numpy_error_model(), _temporary_dir(staging):
        try:
            cc.compile()
        except Exception as exc:  # distutils' CompileError/LinkError, LLVM errors: one message
            raise KernelBuildError(f"the extension did not build: {exc}") from exc
    _write_manifest(staging, cc.output_file, manifest)
    return count


def _write_manifest(staging: Path, file: str, exports: dict[str, Any]) -> None:
    body = {
        "format": extension.FORMAT,
        "digest": places.digest(),
        "file": file,
        "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "kernels": exports,
    }
    # Written last, inside the staging directory: a directory with a manifest is complete.
    (staging / extension.MANIFEST).write_text(json.dumps(body, indent=1) + "\n")


@contextlib.contextmanager
def _numpy_error_model() -> Iterator[None]:
    """pycc compiles with numba's default flags; the kernels are written for error_model=numpy
    (a division by zero gives inf or nan, as under the JIT, instead of raising)."""
    compiler: Any = importlib.import_module("numba.pycc.compiler")
    original = compiler.compile_extra

    def compile_extra(typing: Any, target: Any, func: Any, args: Any, ret: Any, flags: Any,
                      *rest: Any, **named: Any) -> Any:  # fmt: skip
        flags.error_model = "numpy"
        return original(typing, target, func, args, ret, flags, *rest, **named)

    compiler.compile_extra = compile_extra
    try:
        yield
    finally:
        compiler.compile_extra = original


@contextlib.contextmanager
def _temporary_dir(staging: Path) -> Iterator[None]:
    """pycc's scratch files go into the staging directory, removed with it even on failure."""
    scratch = staging / "scratch"
    scratch.mkdir()
    saved, tempfile.tempdir = tempfile.tempdir, str(scratch)
    try:
        yield
    finally:
        tempfile.tempdir = saved
        shutil.rmtree(scratch, ignore_errors=True)


def _publish(staging: Path, final: Path) -> None:
    old = final.with_name(f"{final.name}.old-{os.getpid()}")
    if final.exists():
        final.rename(old)
    staging.rename(final)
    shutil.rmtree(old, ignore_errors=True)


VERIFY: Final = """
import sys
from drivers.compiled import Mode, choice
from gateway.service.warmup import warm_up_kernels
warm_up_kernels()
assert choice().mode is Mode.COMPILED, choice()
assert "numba" not in sys.modules, "numba was imported"
"""


def _verify(base: Path, final: Path) -> None:
    env = {**os.environ, "SILENTGATE_KERNELS": "compiled", "SILENTGATE_KERNELS_DIR": str(base)}
    env.pop("NUMBA_DISABLE_JIT", None)
    done = subprocess.run(
        [sys.executable, "-c", VERIFY], env=env, cwd=places.HERE.parents[1],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        shutil.rmtree(final, ignore_errors=True)
        raise KernelBuildError(f"the build does not load: {done.stderr.strip()[-800:]}")
