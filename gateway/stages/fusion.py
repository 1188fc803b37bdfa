"""Shelf fusion: an item tag leaving a scale's zone plus a settled drop is one ``item.pickup``.

The two halves come from stages that decide at different times: the weight change once the
shelf has settled (a second or two after the hand), the tag's exit once its silence is long
enough to be one (up to a few seconds after its last read). So each half waits, for ``hold_s``,
for a partner:

* an item EXIT from a scale's zone pairs with a settled DROP on that zone -> ``item.pickup``;
* an item ENTER into a scale's zone pairs with a settled RISE on that zone -> ``item.putback``;
* partners' times (the exit's last read, the enter's first read, the change's first movement)
  must lie within the zone's ``window_s`` of each other.

Pairs are one-to-one, and when several are possible the closest in time are taken first
(greedy, which is optimal for the one or two candidates a shelf has at a time). A half whose
wait ends unmatched is dropped: a weight change has been published as ``shelf.weight``
already (untagged goods), and a tag's exit as ``presence.exit`` (a tag that went quiet while
the scale saw nothing is not a pickup). Customers' transitions are never considered.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from gateway.reads.batch import SubjectKind, Subjects
from gateway.stages.shelf import WeightChange
from gateway.stages.transitions import Transition, TransitionKind

HOLD_S: Final = 30.0  # longer than any exit decision (max_window_s + tail) plus settling


class MoveKind(enum.StrEnum):
    PICKUP = "item.pickup"
    PUTBACK = "item.putback"


@dataclass(frozen=True, slots=True)
class ItemMove:
    kind: MoveKind
    subject: int  # index into Subjects
    zone: int
    t: float  # the weight change's first movement
    delta_g: float  # the shelf's change: negative for a pickup
    device: int  # the scale


class FusionStage:
    def __init__(
        self, windows: Mapping[int, float], subjects: Subjects, *, hold_s: float = HOLD_S
    ) -> None:
        """``windows``: zone index -> match window in seconds, for every zone with a scale."""
        self._windows = dict(windows)
        self._subjects = subjects
        subjects.on_release(self._forget)
        self._hold_s = max(hold_s, *self._windows.values()) if self._windows else hold_s
        self._transitions: list[Transition] = []
        self._changes: list[WeightChange] = []
        self._oldest = math.inf  # time of the oldest half waiting (at most: see _expire)
        self.unmatched_transitions = 0
        self.unmatched_changes = 0

    def feed(
        self, transitions: Sequence[Transition], changes: Sequence[WeightChange], now: float
    ) -> list[ItemMove]:
        """Most runs bring nothing new, and then there is nothing to do: pairs that could be made
        were made when their second half came, and halves are given up only when due."""
        fresh_t = [t for t in transitions if self._relevant(t)]
        fresh_c = [c for c in changes if c.zone in self._windows]
        moves = []
        if fresh_t or fresh_c:
            self._transitions += fresh_t
            self._changes += fresh_c
            self._oldest = min(self._oldest, *_times(fresh_t, fresh_c))
            if self._transitions and self._changes:
                moves = self._match()
        if now - self._oldest > self._hold_s:  # as _expire decides, for the oldest half
            self._expire(now)
        return moves

    def pending(self) -> tuple[int, int]:
        """Halves waiting for a partner: (transitions, weight changes)."""
        return len(self._transitions), len(self._changes)

    def _forget(self, ids: Collection[int]) -> None:
        # The presence stage forgets a subject long after its last exit, which has expired
        # here by then; dropped all the same, so that a reused id can never pair with it.
        self._transitions = [t for t in self._transitions if t.subject not in ids]

    def _relevant(self, t: Transition) -> bool:
        return (
            t.kind in (TransitionKind.ENTER, TransitionKind.EXIT)
            and t.zone in self._windows
            and self._subjects.kinds[t.subject] == SubjectKind.ITEM
        )

    def _match(self) -> list[ItemMove]:
        candidates = sorted(
            (abs(t.t - c.t), i, j)
            for i, t in enumerate(self._transitions)
            for j, c in enumerate(self._changes)
            if _compatible(t, c) and abs(t.t - c.t) <= self._windows[c.zone]
        )
        used_t: set[int] = set()
        used_c: set[int] = set()
        moves = []
        for _, i, j in candidates:
            if i in used_t or j in used_c:
                continue
            used_t.add(i)
            used_c.add(j)
            moves.append(_move(self._transitions[i], self._changes[j]))
        self._transitions = [t for i, t in enumerate(self._transitions) if i not in used_t]
        self._changes = [c for j, c in enumerate(self._changes) if j not in used_c]
        return sorted(moves, key=lambda m: m.t)

    def _expire(self, now: float) -> None:
        keep_t = [t for t in self._transitions if now - t.t <= self._hold_s]
        keep_c = [c for c in self._changes if now - c.settled_at <= self._hold_s]
        self.unmatched_transitions += len(self._transitions) - len(keep_t)
        self.unmatched_changes += len(self._changes) - len(keep_c)
        self._transitions, self._changes = keep_t, keep_c
        self._oldest = min(_times(keep_t, keep_c), default=math.inf)


def _times(transitions: list[Transition], changes: list[WeightChange]) -> list[float]:
    """What each half's wait is counted from."""
    return [t.t for t in transitions] + [c.settled_at for c in changes]


def _compatible(t: Transition, c: WeightChange) -> bool:
    if t.zone != c.zone:
        return False
    if t.kind == TransitionKind.EXIT:
        return c.delta_g < 0
    return c.delta_g > 0  # an ENTER: _relevant lets no other kind through


def _move(t: Transition, c: WeightChange) -> ItemMove:
    kind = MoveKind.PICKUP if t.kind == TransitionKind.EXIT else MoveKind.PUTBACK
    return ItemMove(kind, t.subject, c.zone, c.t, c.delta_g, c.device)
