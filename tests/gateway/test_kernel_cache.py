"""The compiled kernels' cache: keyed by every kernel source, loaded on restart, pruned."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numba
import pytest

from gateway.kernels import jit

# A fresh interpreter: imports the stage (which sets numba's cache directory), warms it up and
# reports the cache's hits and misses for the presence kernel.
PROBE = """
import json
from gateway.kernels.presence import feed
from gateway.presence import PresenceStage, ZoneParams
from gateway.kernels import jit
PresenceStage([ZoneParams("a")]).warm_up()
print(json.dumps({"dir": str(jit.cache_dir()), "hits": sum(feed.stats.cache_hits.values()),
                  "misses": sum(feed.stats.cache_misses.values())}))
"""


def probe(cache: Path) -> dict[str, object]:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    )
    result: dict[str, object] = json.loads(out.stdout.splitlines()[-1])
    return result


def test_a_change_to_any_kernel_source_changes_the_cache_directory(tmp_path: Path) -> None:
    for source in jit.PACKAGE.glob("*.py"):
        (tmp_path / source.name).write_bytes(source.read_bytes())
    copies = list(tmp_path.glob("*.py"))
    assert jit.sources_digest(copies) == jit.DIGEST
    layout = tmp_path / "layout.py"  # constants the presence kernel freezes when compiled
    layout.write_text(layout.read_text() + "\n# changed\n")
    assert jit.sources_digest(copies) != jit.DIGEST


def test_numba_caches_below_the_digest_directory() -> None:
    assert str(jit.cache_dir()) == numba.config.CACHE_DIR
    assert jit.cache_dir().name == f"kernels-{jit.DIGEST}"


@pytest.mark.timeout(300)
def test_a_restart_loads_the_kernels_it_compiled_before(tmp_path: Path) -> None:
    if os.environ.get("NUMBA_DISABLE_JIT") == "1":
        pytest.skip("NUMBA_DISABLE_JIT=1: nothing is compiled or cached")
    first = probe(tmp_path)
    assert first["dir"] == str(tmp_path / f"kernels-{jit.DIGEST}")
    assert list(Path(str(first["dir"])).rglob("*.nbi")), "no index written"
    assert first["misses"] == 1
    second = probe(tmp_path)
    assert (second["hits"], second["misses"]) == (1, 0)


def test_prune_removes_other_versions_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    current, old = tmp_path / f"kernels-{jit.DIGEST}", tmp_path / "kernels-0123456789abcdef"
    other = tmp_path / "something-else"
    for d in (current, old, other):
        d.mkdir()
    assert jit.prune_stale() == [old]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([current.name, other.name])
