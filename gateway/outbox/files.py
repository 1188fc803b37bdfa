"""The files the outbox keeps beside its database, and what becomes of a damaged database.

``outbox.db.reserve`` is disk space held back for the day the disk fills up. In WAL mode every
SQLite write appends to the WAL first, a DELETE included, so on a full disk not even delivered
rows can be removed and the outbox could never make room by itself. The reserve is allocated at
start (``posix_fallocate``, so its blocks are really taken), given back when a delete of
delivered rows fails for lack of disk space (the delete then goes through, and the pages it
frees inside the database take the events waiting in memory), and allocated again once the disk
has twice its size free. It is kept for deletes, not spent on new events: spent on events, it
would be gone when the deletes that make room need it.

``outbox.db.seq`` holds a ceiling on every ``seq`` the database may have given out: before a
commit would pass it, it is raised by ``SEQ_BLOCK`` and synced (once per 100,000 events). The
database's own ``meta.last_seq`` is the exact figure; the ceiling is what a fresh database starts
from when the old one is damaged or gone, so that no ``seq`` a consumer has seen is given out
again. The gap it leaves is what a consumer sees as lost, and the events stranded in a damaged
file are lost indeed.

A database that fails its check at start is moved aside as ``outbox.db.corrupt-<UTC time>``,
with its ``-wal`` and ``-shm`` (the WAL first: a fresh database must never meet an old WAL), and
what can still be read of it is counted.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sqlite3
import time
from pathlib import Path
from typing import Final

log = logging.getLogger(__name__)

RESERVE_BYTES: Final = 4 << 20  # a WAL's worth of deletes (the WAL is truncated to 4 MiB)
SEQ_BLOCK: Final = 100_000
_ZEROS: Final = b"\0" * (1 << 16)


def disk_free(directory: Path) -> int:
    """Bytes an unprivileged process may still write on the filesystem of ``directory``."""
    try:
        stat = os.statvfs(directory)
    except OSError:
        return 0
    return stat.f_bavail * stat.f_frsize


class Reserve:
    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.size = size
        self._failure = ""  # the last failure logged: retries do not repeat it

    @property
    def present(self) -> bool:
        return self.size == 0 or self.path.exists()

    def ensure(self) -> bool:
        """Allocate the reserve if it is missing and the disk can spare twice its size."""
        if self.present:
            return True
        if disk_free(self.path.parent) < 2 * self.size:
            return False
        try:
            _allocate(self.path, self.size)
        except OSError as exc:
            if str(exc) != self._failure:
                log.warning("cannot allocate the disk reserve %s: %s", self.path, exc)
            self._failure = str(exc)
            return False
        log.info("allocated the disk reserve %s (%d bytes)", self.path, self.size)
        self._failure = ""
        return True

    def release(self) -> bool:
        """Give the reserve's space back to the disk; False when there was none to give."""
        if self.size == 0:
            return False
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            log.error("cannot release the disk reserve %s: %s", self.path, exc)
            return False
        return True


def _allocate(path: Path, size: int) -> None:
    # Allocated under another name and renamed: a reserve cut short by a full disk never counts.
    partial = path.with_name(path.name + ".partial")
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            _fill(fd, size)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(partial, path)
    except OSError:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise


def _fill(fd: int, size: int) -> None:
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
            raise
        # A filesystem without fallocate: zeros take the blocks just as well.
        for offset in range(0, size, len(_ZEROS)):
            os.pwrite(fd, _ZEROS[: size - offset], offset)


class SeqCeiling:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.value = self.read()
        self._failing = False

    def read(self) -> int | None:
        try:
            return int(self.path.read_text()[:32].strip())
        except (OSError, ValueError):
            return None

    def cover(self, seq: int) -> None:
        """Raise the ceiling to at least ``seq`` before ``seq`` is committed.

        Best effort: the database is the record of seqs, the ceiling only its spare. A disk that
        refuses the ceiling is logged once, and the commit goes ahead.
        """
        if self.value is not None and seq <= self.value:
            return
        target = seq + SEQ_BLOCK
        try:
            _write_durably(self.path, f"{target}\n")
        except OSError as exc:
            if not self._failing:
                log.warning("cannot raise the seq ceiling in %s: %s", self.path, exc)
            self._failing = True
            return
        self.value, self._failing = target, False


def _write_durably(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    with partial.open("w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def move_aside(path: Path, wall: float) -> Path:
    """Rename the database and its -wal and -shm to ``<name>.corrupt-<UTC time>``."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(wall))
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    for suffix in ("-wal", "-shm", ""):
        source = Path(f"{path}{suffix}")
        if source.exists():
            os.replace(source, f"{target}{suffix}")
    return target


def read_stranded(path: Path) -> tuple[int | None, int | None]:
    """(undelivered events, highest seq) of a damaged database, each None when unreadable."""
    uri = path.resolve().as_uri() + "?mode=ro"
    count = _read_int(uri, "SELECT count(*) FROM events")
    readings = [
        _read_int(uri, "SELECT max(seq) FROM events"),
        _read_int(uri, "SELECT value FROM meta WHERE key = 'last_seq'"),
    ]
    known = [value for value in readings if value is not None]
    return count, max(known) if known else None


def _read_int(uri: str, query: str) -> int | None:
    try:
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
            row = conn.execute(query).fetchone()
    except sqlite3.Error:
        return None
    return int(row[0]) if row and row[0] is not None else None
