"""A process under measurement: ``silentgate run`` (or any command) with READY over a notify
socket, CPU time and RSS from /proc (every thread of the process, no psutil)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Self

CLOCK_TICKS: Final = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class Sample:
    t: float  # time.monotonic()
    cpu_s: float  # user + system, all threads
    rss_mb: float
    # The main thread's voluntary context switches: each is a wait for the selector that
    # blocked, so for an event loop on the main thread, its wakeups.
    wakeups: int = 0


def sample(pid: int) -> Sample:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14, 15)
    rss = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
    wakeups = 0
    for line in Path(f"/proc/{pid}/task/{pid}/status").read_text().splitlines():
        if line.startswith("voluntary_ctxt_switches:"):
            wakeups = int(line.split()[1])
    return Sample(time.monotonic(), cpu, rss, wakeups)


def cpu_percent(a: Sample, b: Sample) -> float:
    return 100.0 * (b.cpu_s - a.cpu_s) / (b.t - a.t)


class Measured:
    """Start ``argv``; ``wait_ready`` returns seconds from spawn to READY=1."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        self._dir = tempfile.mkdtemp(prefix="bench-notify-")
        self._sock_path = os.path.join(self._dir, "notify")
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(self._sock_path)
        self.log_path = Path(self._dir) / "stderr.log"
        self._log = self.log_path.open("wb")
        full_env = {**os.environ, **(env or {}), "NOTIFY_SOCKET": self._sock_path}
        self.started = time.monotonic()
        self.proc = subprocess.Popen(argv, env=full_env, stdout=self._log, stderr=self._log)

    @classmethod
    def daemon(cls, config: Path, env: dict[str, str] | None = None) -> Self:
        # BENCH_PROFILE=<file>: the daemon runs under cProfile, for finding what limits it.
        profile = os.environ.get("BENCH_PROFILE")
        head = ["-m", "cProfile", "-o", profile] if profile else []
        return cls([sys.executable, *head, "-m", "gateway", "run", "--config", str(config)], env)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout: float = 60.0) -> float:
        self._sock.settimeout(timeout)
        while True:
            try:
                msg = self._sock.recv(4096).decode()
            except TimeoutError:
                raise RuntimeError(f"no READY within {timeout} s: {self.tail()}") from None
            if "READY=1" in msg.split("\n"):
                return time.monotonic() - self.started

    def sample(self) -> Sample:
        return sample(self.pid)

    def tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-2000:]

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self._sock.close()
        self._log.close()
        return rc

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
