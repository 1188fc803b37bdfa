"""What the presence stage tells the rest of the pipeline: a subject's state changed in a zone.

Transitions carry integer ids and monotonic times only; ``gateway/events/model.py`` turns them
into the public event objects (ids, wall-clock timestamps, pseudonyms) of
docs/contract.md, "Events".
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class TransitionKind(enum.IntEnum):
    ENTER = 0
    DWELL = 1
    EXIT = 2


@dataclass(frozen=True, slots=True)
class Transition:
    kind: TransitionKind
    subject: int  # index into Subjects
    zone: int  # index into the zone table
    t: float  # when it happened: first read (enter), dwell threshold reached, last read (exit)
    since: float  # when the visit began (the enter's t)
    rssi: float  # dBm: strongest recent read for enter; NaN where unknown
    device: int  # reader that saw the read behind an enter (-1 when not applicable)
    antenna: int
