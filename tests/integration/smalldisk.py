"""A process on a small private filesystem that a test fills, frees and makes read-only.

``SmallDisk`` starts this file as ``unshare --user --map-root-user --mount python smalldisk.py
DIR SIZE -- CMD...``: an unprivileged user may mount a tmpfs of ``SIZE`` at ``DIR`` inside a mount
namespace of its own, so the filesystem is real (ENOSPC and EROFS come from the kernel) and
nothing outside the namespace sees it. Root inside the namespace is not stopped by file modes,
so read-only is a read-only bind mount, as a disk remounted read-only would be.

The test drives it over stdin, one instruction a line, and reads one answer line each:

    start          start CMD (again after it exited)         -> "started PID"
    fill           write a filler file until ENOSPC          -> "filled BYTES"
    free           delete the filler                         -> "freed BYTES"
    ro PATH        make PATH (a file, or DIR) read-only      -> "ro PATH"
    rw PATH        undo ``ro PATH``                          -> "rw PATH"
    stop           SIGTERM to CMD and wait for it            -> "exit RC"
    state DB       the outbox DB's last_seq and backlog      -> "state LAST_SEQ BACKLOG"

An instruction that fails answers ``error ...``. When CMD exits by itself, ``exited RC`` is
written at once. The end of stdin stops CMD and unmounts the disk (the namespace ends). The test
reaches files on the small disk through ``/proc/PID/root`` meanwhile, except SQLite databases:
SQLite resolves that link to ``/`` outside the namespace, so ``state`` reads them inside.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

CHUNK = 1 << 16


def unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = ["unshare", "--user", "--map-root-user", "--mount", "true"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


class SmallDisk:
    """The test's side: a tmpfs of ``size`` at ``directory`` that only ``command`` sees."""

    def __init__(self, directory: Path, size: int, command: list[str], log: Path) -> None:
        self.directory = directory
        self.size = size
        self.command = command
        self.log = log
        self.exited: int | None = None  # CMD's exit code when it ended by itself
        self._proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> SmallDisk:
        self.directory.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self._proc = await asyncio.create_subprocess_exec(
                *["unshare", "--user", "--map-root-user", "--mount"],
                *[sys.executable, __file__, str(self.directory), str(self.size), "--"],
                *self.command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
            )
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._proc is not None
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        await asyncio.wait_for(self._proc.wait(), 30)

    async def do(self, instruction: str) -> str:
        assert self._proc is not None
        assert self._proc.stdin is not None
        assert self._proc.stdout is not None
        self._proc.stdin.write(instruction.encode() + b"\n")
        await self._proc.stdin.drain()
        while True:
            line = (await asyncio.wait_for(self._proc.stdout.readline(), 60)).decode().strip()
            if not line.startswith("exited "):
                break
            self.exited = int(line.split()[1])
        if line.startswith("error") or not line:
            raise AssertionError(f"{instruction}: {line or 'no answer'}")
        return line

    async def outbox_state(self, name: str = "outbox.db") -> tuple[int, int]:
        """(last_seq, undelivered rows) of a database on the small disk; (0, 0) before it
        exists."""
        try:
            _, last_seq, backlog = (await self.do(f"state {self.directory / name}")).split()
        except AssertionError:
            return 0, 0
        return int(last_seq), int(backlog)

    def path(self, name: str) -> Path:
        """A file on the small disk, as this process can reach it."""
        assert self._proc is not None
        return Path(f"/proc/{self._proc.pid}/root") / self.directory.relative_to("/") / name


# -- the namespace's side


def main(argv: list[str]) -> int:
    directory, size, _, *command = argv
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", directory], check=True)
    disk = Disk(Path(directory), command, sys.stdout)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        try:
            answer = disk.do(words[0], words[1:])
        except (OSError, sqlite3.Error, subprocess.CalledProcessError, IndexError) as exc:
            answer = f"error {exc}"
        disk.reply(answer)
    disk.stop()
    return 0


class Disk:
    def __init__(self, directory: Path, command: list[str], out: IO[str]) -> None:
        self.directory = directory
        self.command = command
        self.filler = directory / "filler"
        self.out = out
        self.proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._stopping = False

    def do(self, word: str, args: list[str]) -> str:
        match word:
            case "start":
                return self.start()
            case "fill":
                return f"filled {self.fill()}"
            case "free":
                size = self.filler.stat().st_size
                self.filler.unlink()
                return f"freed {size}"
            case "ro":
                _run("mount", "--bind", args[0], args[0])
                _run("mount", "-o", "remount,bind,ro", args[0])
                return f"ro {args[0]}"
            case "rw":
                _run("umount", args[0])
                return f"rw {args[0]}"
            case "stop":
                return f"exit {self.stop()}"
            case "state":
                return "state {} {}".format(*outbox_state(Path(args[0])))
        return f"error unknown instruction {word!r}"

    def reply(self, line: str) -> None:
        with self._lock:
            self.out.write(line + "\n")
            self.out.flush()

    def start(self) -> str:
        self._stopping = False
        proc = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        self.proc = proc
        threading.Thread(target=self._report_exit, args=(proc,), daemon=True).start()
        return f"started {proc.pid}"

    def fill(self) -> int:
        with self.filler.open("ab", buffering=0) as f:
            chunk = b"\0" * CHUNK
            with contextlib.suppress(OSError):  # ENOSPC: what fitted of the last chunk stays
                while f.write(chunk):
                    pass
            return f.tell()

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        self._stopping = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait()

    def _report_exit(self, proc: subprocess.Popen[bytes]) -> None:
        rc = proc.wait()
        if not self._stopping and self.proc is proc:
            self.reply(f"exited {rc}")


def outbox_state(path: Path) -> tuple[int, int]:
    """(last_seq, undelivered rows), read beside the running daemon (WAL allows it)."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        last = conn.execute("SELECT value FROM meta WHERE key = 'last_seq'").fetchone()[0]
        backlog = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    return int(last), int(backlog)


def _run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
