"""Who picked it up: the customer in a shelf's zone when an item left it (or came back).

Fusion (``gateway.stages.fusion``) says which item moved, where and when; this says who was there,
from the customers' own presence transitions as the event factory turns them into events. A
customer is in a zone from the first read of its enter to the last read of its exit (still in
while no exit has come). For a move at time ``t`` in zone ``z`` the candidates are the customers
whose stay in ``z`` covers ``t``:

* exactly one: that customer, ``basis = "only"``;
* several: the one whose enter was read strongest (RSSI: the nearest antenna, usually the
  nearest person), ties and unknown RSSI going to the latest to arrive (the one whose hand is
  most likely new at the shelf), ``basis = "strongest"``, with the number of candidates so a
  consumer can weigh the claim;
* none: no customer is named.

Closed stays are kept for ``KEEP_S``: a move is published up to fusion's hold time after it
happened, and the customer may have left by then.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from typing import Final, Literal

from gateway.reads.batch import SubjectKind, Subjects
from gateway.stages.fusion import HOLD_S
from gateway.stages.transitions import Transition, TransitionKind

KEEP_S: Final = 2 * HOLD_S

Basis = Literal["only", "strongest"]


@dataclass(frozen=True, slots=True)
class Claim:
    subject: int  # index into Subjects
    candidates: int
    basis: Basis


@dataclass(slots=True)
class _Stay:
    subject: int
    zone: int
    start: float
    rssi: float
    end: float = math.inf

    def covers(self, t: float) -> bool:
        return self.start <= t <= self.end


class Attribution:
    def __init__(self, subjects: Subjects) -> None:
        self._subjects = subjects
        self._open: dict[int, _Stay] = {}  # subject -> its current stay
        self._closed: list[_Stay] = []
        subjects.on_release(self._forget)

    def observe(self, t: Transition) -> None:
        """Every transition, in the order the factory builds events from them."""
        if self._subjects.kinds[t.subject] != SubjectKind.CUSTOMER:
            return
        if t.kind == TransitionKind.ENTER:
            self._open[t.subject] = _Stay(t.subject, t.zone, t.t, t.rssi)
        elif t.kind == TransitionKind.EXIT:
            stay = self._open.pop(t.subject, None)
            if stay is not None:
                stay.end = t.t
                self._closed.append(stay)
            self._closed = [s for s in self._closed if t.t - s.end <= KEEP_S]

    def claim(self, zone: int, t: float) -> Claim | None:
        """The customer in ``zone`` at ``t``, or None when there was none."""
        stays = [s for s in (*self._open.values(), *self._closed) if s.zone == zone and s.covers(t)]
        if not stays:
            return None
        if len(stays) == 1:
            return Claim(stays[0].subject, 1, "only")
        best = max(stays, key=lambda s: (-math.inf if math.isnan(s.rssi) else s.rssi, s.start))
        return Claim(best.subject, len(stays), "strongest")

    def _forget(self, ids: Collection[int]) -> None:
        # A released index will name another subject: its stays must not be claimed for it.
        for index in ids:
            self._open.pop(index, None)
        self._closed = [s for s in self._closed if s.subject not in ids]
