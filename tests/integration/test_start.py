"""``silentgate run`` starting: by hand on a read-only install, stopped while it compiles, and
the demo on a first start that compiles (numba's JIT on an empty cache).

The daemons here have a notify socket, as under systemd, and readers on ports that do not
exist (they retry, which is enough for READY); no broker is needed to start or to stop.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("gateway", "drivers", "firmware_sim")


def config_text(tmp: Path) -> str:
    (tmp / "secret").write_text("start-test-secret-0123456789\n")
    return f"""
[site]
store = "store-042"
gateway = "gw-start"
[mqtt]
url = "mqtt://127.0.0.1:1"
[storage]
path = "{tmp / "state" / "outbox.db"}"
[privacy]
secret_file = "{tmp / "secret"}"
[[readers]]
id = "door"
driver = "thingmagic"
port = "{tmp / "no-such-port"}"
antennas = {{ 1 = "entrance" }}
"""


class Notify:
    """A notify socket; ``wait`` returns the first datagram holding ``field``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.seen: list[str] = []

    def wait(self, field: str, proc: subprocess.Popen[bytes], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        self.sock.settimeout(0.5)
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                fields = self.sock.recv(4096).decode().splitlines()
            except TimeoutError:
                continue
            self.seen += fields
            if field in fields:
                return True
        return False


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[Notify]:
    n = Notify(tmp_path / "notify")
    yield n
    n.sock.close()


def spawn(argv: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)


def read_only_copy(tmp: Path) -> Path:
    app = tmp / "app"
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, app / package, ignore=shutil.ignore_patterns("__pycache__", "*.so")
        )
    for path in [app, *app.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    return app


def as_unprivileged(argv: list[str]) -> list[str]:
    """root writes anywhere; without these capabilities it obeys file modes like any user."""
    if os.geteuid() != 0:
        return argv
    if shutil.which("setpriv") is None:
        pytest.skip("root without setpriv cannot drop the right to write read-only files")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner", "--", *argv]


def test_a_hand_started_daemon_runs_without_any_writable_cache_directory(
    tmp_path: Path, notify: Notify
) -> None:
    """Installed read-only (a venv root owns), started by a user without a writable home: no
    directory for numba's cache anywhere. It must start all the same."""
    app = read_only_copy(tmp_path)
    (tmp_path / "state").mkdir()
    config = tmp_path / "gw.toml"
    config.write_text(config_text(tmp_path))
    unwritable = str(app / "home")  # inside the read-only copy: cannot be created
    env = {
        k: v for k, v in os.environ.items()
        if k not in ("NUMBA_CACHE_DIR", "CACHE_DIRECTORY", "SILENTGATE_KERNELS_DIR")
    }  # fmt: skip
    env |= {"HOME": unwritable, "XDG_CACHE_HOME": unwritable, "NOTIFY_SOCKET": str(notify.path),
            "PYTHONDONTWRITEBYTECODE": "1"}  # fmt: skip
    argv = as_unprivileged([sys.executable, "-m", "gateway", "run", "--config", str(config)])
    proc = spawn(argv, env, app, tmp_path / "daemon.log")
    try:
        ready = notify.wait("READY=1", proc, timeout=240)
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(60)
        for path in [app, *app.rglob("*")]:
            if path.is_dir():
                path.chmod(0o755)
    log = (tmp_path / "daemon.log").read_text()
    assert ready, log
    assert rc == 0, log


def test_sigterm_while_the_kernels_compile_stops_the_daemon_at_once(
    tmp_path: Path, notify: Notify
) -> None:
    """A first start compiles for seconds (minutes on a small board); SIGTERM then must not
    wait for the compile: the daemon stops before it finishes, with exit 0, never READY."""
    cache = tmp_path / "numba-cache"
    (tmp_path / "state").mkdir()
    config = tmp_path / "gw.toml"
    config.write_text(config_text(tmp_path))
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache), "SILENTGATE_KERNELS": "jit",
           "NOTIFY_SOCKET": str(notify.path)}  # fmt: skip
    env.pop("NUMBA_DISABLE_JIT", None)
    log = tmp_path / "daemon.log"
    proc = spawn([sys.executable, "-m", "gateway", "run", "--config", str(config)], env, ROOT, log)
    try:
        while "starting:" not in log.read_text() and proc.poll() is None:
            time.sleep(0.05)
        time.sleep(0.5)  # into the compile, which takes seconds
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(60)
    finally:
        proc.kill()
    text = log.read_text()
    assert rc == 0, text
    assert "stopped while starting" in text
    assert "READY=1" not in notify.seen
    # The stream scan compiles after the presence kernel: nothing of it may have been cached.
    assert not list(cache.rglob("*scan_kernel*.nbi")), text


def test_the_demo_counts_its_duration_from_the_daemons_ready(tmp_path: Path) -> None:
    """On a first start that compiles (longer than the demo's 4 s here), the demo shows
    progress, waits for READY, and then runs its 4 s: events, a score, exit 0."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache"),
           "SILENTGATE_KERNELS": "jit"}  # fmt: skip
    env.pop("NUMBA_DISABLE_JIT", None)
    out = subprocess.run(
        [sys.executable, "-m", "gateway", "demo", "--duration", "4", "--json"],
        capture_output=True, text=True, timeout=240, env=env, cwd=ROOT, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    *events, last = [json.loads(line) for line in out.stdout.splitlines()]
    assert any(e["type"] == "presence.enter" for e in events), out.stderr
    assert last["summary"]["true_visits"] > 0
    assert "daemon ready after" in out.stderr
