"""What the outbox tells the status: its figures, and whether storage works."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

StorageState = Literal["ok", "full", "failed"]


@dataclass(frozen=True, slots=True)
class StorageHealth:
    """``full``: events cannot all be stored for lack of space (the limit, or the disk), or the
    disk has too little left for the reserve; ``failed``: the database cannot be opened or
    written for another reason (read-only, I/O error, damaged, locked)."""

    state: StorageState = "ok"
    reason: str | None = None  # why not ok
    since: float | None = None  # unix time the state began; None while ok
    reserve: bool = True  # the disk reserve is in place (outbox/files.py)
    moved_aside: Path | None = None  # a damaged database moved aside at start
    stranded: int | None = None  # undelivered events in it; None: unknown


@dataclass(frozen=True, slots=True)
class Backlog:
    count: int
    oldest_accepted: float | None  # unix time; None when empty
    last_seq: int
    bytes: int = 0
    max_bytes: int | None = None
    full: bool = False  # droppable events are being dropped, or events are held in memory
    held: int = 0  # events waiting in memory for space; not accepted yet
    dropped: dict[str, int] = field(default_factory=dict)  # per type, since the file was made
    lost: int = 0  # events that found neither space nor room in memory
    storage: StorageHealth = field(default_factory=StorageHealth)

    def oldest_age_s(self, now: float) -> float:
        return 0.0 if self.oldest_accepted is None else max(0.0, now - self.oldest_accepted)
