"""How a process runs its kernels, each way, as ``silentgate run`` and as the test suites.

One build for the session (``silentgate build-kernels``, about 20 s here) serves: the daemon on
compiled kernels where memory may not be written and then executed, turning reads into events
without numba or llvmlite in its address space; the kernel == twin suites run against the
extension; and what the daemon does there without a build (plain Python, said so), or with the
JIT forced. "There" is both ways Linux refuses such memory: systemd's MemoryDenyWriteExecute=yes
(a seccomp filter, rebuilt in ``mdwe_seccomp.c`` since systemd is not PID 1 here) and the
kernel's own PR_SET_MDWE.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from harness import HeldClock, config_text, wait_for

from demo.broker import BrokerProcess
from drivers.compiled import places
from firmware_sim.pty import SimPort
from gateway.tools.tail import subscribe

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
ROOT = Path(__file__).resolve().parents[2]


# Refuses memory that is written and then executed for good (kept across exec), then runs argv.
LAUNCH = """
import ctypes, os, sys
if ctypes.CDLL(None, use_errno=True).prctl(65, 1, 0, 0, 0) != 0:  # PR_SET_MDWE
    sys.exit(97)
os.execv(sys.argv[1], sys.argv[1:])
"""


def under_mdwe(argv: list[str]) -> list[str]:
    return [sys.executable, "-c", LAUNCH, *argv]


@pytest.fixture(scope="session")
def has_mdwe() -> None:
    done = subprocess.run(under_mdwe([sys.executable, "-c", "pass"]), check=False)
    if done.returncode == 97:
        pytest.skip("this kernel has no PR_SET_MDWE (Linux 6.3+)")


@pytest.fixture(scope="session")
def seccomp_launcher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """systemd's MemoryDenyWriteExecute filter as a launcher (the build needs a compiler too)."""
    out = tmp_path_factory.mktemp("seccomp") / "mdwe_seccomp"
    source = Path(__file__).with_name("mdwe_seccomp.c")
    subprocess.run(["cc", "-O2", "-o", str(out), str(source)], check=True)
    return out


@pytest.fixture(params=["systemd-seccomp", "pr-set-mdwe"])
def refused(request: pytest.FixtureRequest) -> Callable[[list[str]], list[str]]:
    """How the daemon is kept from memory that is written, then executed."""
    if request.param == "pr-set-mdwe":
        request.getfixturevalue("has_mdwe")
        return under_mdwe
    launcher = request.getfixturevalue("seccomp_launcher")
    return lambda argv: [str(launcher), *argv]


def env_for(**extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("SILENTGATE_KERNELS", "NUMBA_"))
    }
    return env | extra


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("kernels")
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "build-kernels", "--dir", str(base)],
        env=env_for(), cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return base


def compiled_env(base: Path) -> dict[str, str]:
    return env_for(SILENTGATE_KERNELS="compiled", SILENTGATE_KERNELS_DIR=str(base))


def python_c(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
        check=False,
    )  # fmt: skip


def test_a_second_build_finds_the_first_up_to_date(built: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "build-kernels", "--dir", str(built)],
        env=env_for(), cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "up to date" in done.stdout
    assert list((built / f"kernels-{places.digest()}" / "compiled").glob("_silentgate_kernels*"))


@pytest.mark.timeout(300)
def test_the_compiled_build_passes_the_kernel_and_twin_suites(built: Path) -> None:
    # Every test marked `kernels` (the kernels against their twins, and the stages that call
    # them) on the build an installation makes, with nothing compiled at run time.
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "kernels"],
        env=compiled_env(built), cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:]
    assert " passed" in done.stdout


ERRORS = """
import math, sys
from drivers.compiled import describe
from gateway.stages.kernels.smoothing import mean_gap
from gateway.stages.kernels.zones import decayed
print(describe().split()[0], mean_gap(1.0, 1.0, 0.0, 1.0), decayed(1.0, 0.0, 0.0))
"""


def test_compiled_kernels_keep_numpys_error_model_as_under_the_jit(built: Path) -> None:
    # A division by zero is inf or nan under error_model="numpy", never a ZeroDivisionError.
    compiled = python_c(ERRORS, compiled_env(built))
    jit = python_c(ERRORS, env_for(SILENTGATE_KERNELS="jit"))
    assert compiled.stdout.split() == ["compiled", "inf", "nan"], compiled.stderr
    assert jit.stdout.split() == ["jit", "inf", "nan"], jit.stderr


def test_jit_forced_where_memory_may_not_be_written_and_executed_is_refused(
    refused: Callable[[list[str]], list[str]],
) -> None:
    argv = refused([sys.executable, "-c", "import gateway.stages.kernels.presence_kernel"])
    done = subprocess.run(
        argv, env=env_for(SILENTGATE_KERNELS="jit"), cwd=ROOT, capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr  # refused with its reason, numba never imported
    assert "MemoryDenyWriteExecute" in done.stderr


NUMBA_CACHED = """
import ctypes, sys
from numba import njit
@njit(cache=True)
def inc(x):
    return x + 1
if sys.argv[1:] == ["mdwe-now"]:  # the restriction arrives after numba is imported
    assert ctypes.CDLL(None).prctl(65, 1, 0, 0, 0) == 0
print(inc(1))
"""


def test_why_jit_is_never_tried_there(has_mdwe: None, tmp_path: Path) -> None:
    """What the probe (drivers/compiled/wx.py) spares the daemon: numba refuses to be imported
    where memory may not be written and executed (an exception at start), and where that
    restriction comes after the import, its cached machine code kills the process when loaded."""
    env = env_for(NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    script = tmp_path / "cached.py"  # numba caches functions of files only
    script.write_text(NUMBA_CACHED)
    argv = [sys.executable, str(script)]

    def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, env=env, capture_output=True, text=True, check=False)

    first = run(argv)
    assert first.stdout.strip() == "2", first.stderr  # compiled and cached, no MDWE
    refused = run(under_mdwe(argv))
    assert refused.returncode == 1
    assert "cannot allocate executable memory" in refused.stderr
    late = run([*argv, "mdwe-now"])
    assert late.returncode == -11, (late.returncode, late.stderr)  # SIGSEGV loading the cache


class Daemon:
    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                argv, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
            )

    def mapped(self) -> str:
        return Path(f"/proc/{self.proc.pid}/maps").read_text()

    def stop(self) -> tuple[int, str]:
        self.proc.terminate()
        return self.proc.wait(60), self.log.read_text()


async def run_store(
    broker: BrokerProcess, reader: tuple[SimPort, HeldClock], tmp: Path, env: dict[str, str],
    refused: Callable[[list[str]], list[str]],
) -> tuple[list[dict[str, Any]], str, int, str]:  # fmt: skip
    """The e2e store, no memory written then executed, until the customer dwells at shelf-a:
    events, the daemon's memory maps, its exit code and log."""
    port, clock = reader
    config = tmp / "gw.toml"
    config.write_text(config_text(tmp, str(port.path), broker.url))
    seen: list[dict[str, Any]] = []
    ready = asyncio.Event()
    listener = asyncio.create_task(subscribe(
        broker.url, "silentcommerce/v1/store-042/gw-e2e/#",
        lambda kind, obj: seen.append(obj), ready,
    ))  # fmt: skip
    await ready.wait()
    argv = refused([sys.executable, "-m", "gateway", "run", "--config", str(config)])
    daemon = Daemon(argv, env, tmp / "daemon.log")
    try:
        await wait_for(seen, lambda e: e.get("state") == "ok", timeout=60)
        clock.start()
        await wait_for(seen, lambda e: e.get("type") == "presence.dwell", timeout=60)
        maps = daemon.mapped()
    finally:
        rc, log = daemon.stop()
        listener.cancel()
    return seen, maps, rc, log


@pytest.mark.broker
async def test_the_daemon_on_compiled_kernels_never_loads_a_compiler(
    refused: Callable[[list[str]], list[str]], built: Path, broker: BrokerProcess,
    reader: tuple[SimPort, HeldClock], tmp_path: Path,
) -> None:  # fmt: skip
    seen, maps, rc, log = await run_store(broker, reader, tmp_path, compiled_env(built), refused)
    assert rc == 0, log
    assert "kernels: compiled" in log
    assert "llvmlite" not in maps, log
    assert "/numba/" not in maps, log
    assert any(e.get("type") == "presence.enter" for e in seen)


@pytest.mark.broker
async def test_without_a_build_the_refused_daemon_runs_its_kernels_as_python(
    refused: Callable[[list[str]], list[str]], broker: BrokerProcess,
    reader: tuple[SimPort, HeldClock], tmp_path: Path,
) -> None:  # fmt: skip
    empty = tmp_path / "no-build"
    env = env_for(SILENTGATE_KERNELS_DIR=str(empty))
    seen, maps, rc, log = await run_store(broker, reader, tmp_path, env, refused)
    assert rc == 0, log
    assert "kernels: python (memory may not be written and executed" in log
    assert "silentgate build-kernels" in log
    assert "llvmlite" not in maps
    assert any(e.get("kernels") == "python" for e in seen)  # the retained status says so
    assert any(e.get("type") == "presence.enter" for e in seen)


DESCRIBE = (
    "import gateway.stages.kernels.presence_kernel\n"
    "from drivers.compiled import describe\nprint(describe())"
)


def test_a_damaged_build_is_passed_over_with_a_warning(tmp_path: Path) -> None:
    directory = tmp_path / f"kernels-{places.digest()}" / "compiled"
    directory.mkdir(parents=True)
    fake = directory / "_silentgate_kernels.cpython-311-x86_64-linux-gnu.so"
    fake.write_bytes(b"\x7fELF but truncated")
    (directory / "manifest.json").write_text(
        f'{{"format": 1, "digest": "{places.digest()}", "file": "{fake.name}", "kernels": {{}}}}'
    )
    done = python_c(DESCRIBE, env_for(SILENTGATE_KERNELS_DIR=str(tmp_path)))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("jit ("), done.stdout
    assert "compiled kernels unusable" in done.stderr
    forced = python_c(DESCRIBE, env_for(SILENTGATE_KERNELS_DIR=str(tmp_path),
                                        SILENTGATE_KERNELS="compiled"))  # fmt: skip
    assert forced.returncode == 1
    assert "cannot load" in forced.stderr
