"""drivers.compiled in one process: the sources' digest, where builds live, the manifest read as
hostile input, the guard in front of every compiled call, and the write-execute probe.
How a whole process chooses and runs its kernels: tests/integration/test_kernel_modes.py."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from drivers.compiled import extension, places
from drivers.compiled.extension import Export, Guarded
from drivers.compiled.wx import write_execute_allowed
from drivers.errors import KernelError

F64_2D_C_MUTABLE = ["float64", 2, "C", True]


def test_a_change_to_any_project_source_changes_the_digest(tmp_path: Path) -> None:
    sources = {p.relative_to(places.HERE.parents[1]): p for p in places.project_sources()}
    for rel, src in sources.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(src.read_bytes())
    copies = [tmp_path / rel for rel in sources]
    assert places.sources_digest(copies, tmp_path) == places.digest()
    # A constant a kernel freezes when compiled, far from any kernel module.
    layout = tmp_path / "drivers" / "thingmagic" / "frames.py"
    layout.write_text(layout.read_text() + "\n# changed\n")
    assert places.sources_digest(copies, tmp_path) != places.digest()


def test_an_explicit_directory_is_the_only_candidate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SILENTGATE_KERNELS_DIR", "/somewhere")
    monkeypatch.setenv("CACHE_DIRECTORY", "/var/cache/silentgate")
    assert places.candidates() == [Path("/somewhere")]
    monkeypatch.delenv("SILENTGATE_KERNELS_DIR")
    monkeypatch.setenv("NUMBA_CACHE_DIR", "/numba")
    assert places.candidates() == [Path("/numba")]


def test_under_systemd_the_cache_directory_comes_first_and_no_home(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("SILENTGATE_KERNELS_DIR", "NUMBA_CACHE_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CACHE_DIRECTORY", "/var/cache/silentgate:/other")
    monkeypatch.setenv("XDG_CACHE_HOME", "/home/x/.cache")
    found = places.candidates()
    assert found[:2] == [Path("/var/cache/silentgate/kernels"), places.HERE / "__pycache__"]
    assert Path("/home/x/.cache/silentgate") not in found


def test_by_hand_the_package_then_the_users_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SILENTGATE_KERNELS_DIR", "NUMBA_CACHE_DIR", "CACHE_DIRECTORY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", "/home/x/.cache")
    found = places.candidates()
    assert found[:2] == [places.HERE / "__pycache__", Path("/home/x/.cache/silentgate")]


def test_prune_removes_other_versions_only(tmp_path: Path) -> None:
    current, old = places.version_dir(tmp_path), tmp_path / "kernels-0123456789abcdef"
    other = tmp_path / "something-else"
    for d in (current, old, other):
        d.mkdir()
    assert places.prune(tmp_path) == [old]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([current.name, other.name])


def write_manifest(directory: Path, body: object) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    (directory / extension.MANIFEST).write_bytes(raw)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"x" * (extension.MAX_MANIFEST_BYTES + 1), "larger than"),
        (b"\xff{", "not JSON"),
        ([1, 2], "not a manifest"),
        ({"format": 99}, "not a manifest"),
        ({"format": 1, "digest": "other"}, "other sources"),
        ({"format": 1, "digest": "D", "kernels": []}, "no kernels"),
        ({"format": 1, "digest": "D", "kernels": {}, "file": "../../etc/passwd"}, "no extension"),
    ],
)
def test_a_damaged_manifest_is_refused_with_a_reason(
    tmp_path: Path, body: object, message: str
) -> None:
    write_manifest(tmp_path, body)
    with pytest.raises(KernelError, match=message):
        extension.load(tmp_path, "D")


def test_no_build_at_all_says_so(tmp_path: Path) -> None:
    with pytest.raises(KernelError, match="no compiled build"):
        extension.load(tmp_path / "missing", "D")


@pytest.mark.parametrize(
    "spec", [["float64", 2, "Z", True], ["nonsense", 1, "C", True], ["f8", 0, "C", True],
             ["float64", 2, "C", 1], 7, "no-such-scalar"],
)  # fmt: skip
def test_an_unreadable_argument_type_is_refused(spec: object) -> None:
    with pytest.raises(KernelError, match="unreadable"):
        extension.arg_for(0, spec)


def export(*specs: object) -> Export:
    return Export.of(lambda *args: "compiled", list(specs))


def test_an_array_must_match_dtype_dimensions_layout_and_writability() -> None:
    e = export(F64_2D_C_MUTABLE)
    good = np.zeros((3, 4))
    assert e.accepts([good])
    assert not e.accepts([good.astype(np.float32)])
    assert not e.accepts([good.ravel()])
    assert not e.accepts([good[:, ::2]])  # strided: not C-contiguous
    assert not e.accepts([good.astype(good.dtype.newbyteorder())])
    frozen = good.copy()
    frozen.setflags(write=False)
    assert not e.accepts([frozen])  # the kernel may write into it
    assert not e.accepts([[[0.0] * 4] * 3])  # a list is not an array
    assert export(["float64", 2, "C", False]).accepts([frozen])
    assert export(["float64", 2, "A", True]).accepts([good[:, ::2]])


def test_a_scalar_must_be_what_numba_would_type_it_as() -> None:
    e = export("int64", "float64", "bool")
    assert e.accepts([1, 1.5, True])
    assert e.accepts([np.int64(1), np.float64(1.5), np.bool_(True)])
    assert not e.accepts([True, 1.5, True])  # a bool is not an int64 here
    assert not e.accepts([1, 1, True])  # nor an int a float64: numba would compile anew
    assert not e.accepts([1 << 63, 1.5, True])  # does not fit
    assert not e.accepts([np.int32(1), 1.5, True])
    assert not e.accepts([1, 1.5])


def test_a_call_no_export_was_built_for_runs_the_python_function(
    caplog: pytest.LogCaptureFixture,
) -> None:
    guarded = Guarded("m.add", [export("float64", "float64")], lambda a, b: ("python", a + b))
    assert guarded(1.0, 2.0) == "compiled"
    with caplog.at_level(logging.WARNING):
        assert guarded(1, 2) == ("python", 3)
        assert guarded(1, 3) == ("python", 4)
    assert guarded.fallbacks == 2
    assert len([r for r in caplog.records if "m.add" in r.getMessage()]) == 1  # logged once


def test_write_execute_memory_is_allowed_here_and_refused_under_mdwe() -> None:
    assert write_execute_allowed()
    probe = (
        "import ctypes, sys\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "if libc.prctl(65, 1, 0, 0, 0) != 0: sys.exit(3)\n"  # PR_SET_MDWE, REFUSE_EXEC_GAIN
        "from drivers.compiled.wx import write_execute_allowed\n"
        "sys.exit(0 if not write_execute_allowed() else 1)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], check=False, cwd=places.HERE.parents[1])
    if done.returncode == 3:
        pytest.skip("this kernel has no PR_SET_MDWE (Linux 6.3+)")
    assert done.returncode == 0
