"""The presence stage: read batches in, zone enter / dwell / exit transitions out.

All per-read work happens in one numba kernel call per batch
(``gateway.stages.kernels.presence_kernel``);
this class owns the state arrays, grows them when new subjects are interned, and turns the
kernel's output rows into ``Transition`` objects, so Python work per batch is O(transitions).

A subject is in at most one zone at a time. A later stage (shelf fusion) consumes the item exits
from shelf zones; nothing here knows about scales.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

from gateway.reads.batch import ReadBatch, Subjects
from gateway.stages.kernels import layout
from gateway.stages.kernels.presence_kernel import any_news
from gateway.stages.kernels.presence_kernel import feed as feed_kernel
from gateway.stages.kernels.smoothing import prior_pool
from gateway.stages.transitions import Transition, TransitionKind

INITIAL_SUBJECTS: Final = 64  # rows double from here as subject ids grow
FORGET_AFTER_S: Final = 3600.0  # config: presence.forget_after_s


@dataclass(frozen=True, slots=True)
class ZoneParams:
    name: str
    dwell_s: float = 5.0


@dataclass(frozen=True, slots=True)
class EngineParams:
    """Tuning of dedup, the adaptive window and zone resolution (docs/presence.md)."""

    delta: float = 1e-6  # accepted chance that a silence of one window is only misses
    dedup_s: float = 0.02  # reads of one pair closer than this are one read
    enter_reads: int = 2  # a run needs this many counted reads before it can enter
    # ... and this score (reads at rssi_ref_dbm, decayed with tau_s) before it can take the
    # subject: faint bleed from a neighbour's antenna never gets there on its own.
    enter_score: float = 3.0
    hysteresis: float = 0.5  # another zone must score (1 + h) times the current one
    tau_s: float = 0.5  # decay of the zone score
    prior_reads: float = 2.0
    prior_rate_hz: float = 4.0
    min_window_s: float = 0.3
    max_window_s: float = 1.95  # the exit latency we accept for the sparsest tag
    rssi_ref_dbm: float = -60.0
    rssi_scale_db: float = 6.0
    # Silence tail (gateway/stages/kernels/smoothing.py), in units of a tag's mean gap between
    # reads.
    tail_u: float = 2.0  # threshold above which a silence counts as a tail sample
    prior_gaps: float = 5000.0  # weight of the prior, in silences
    prior_exceed: float = 0.1  # prior chance that a silence exceeds tail_u
    prior_excess: float = 3.0  # prior mean overshoot of those
    pool_forget: float = 1e-5  # per silence: the pool remembers ~100k silences
    rejoin_s: float = 2.5  # a return to the zone just left within this was a miss burst
    long_reads: float = 1000.0  # past this many reads a visit's window grows with ln(reads)

    def __post_init__(self) -> None:
        # The kernel divides by these without checking (numpy error model).
        positive = (
            "tau_s",
            "rssi_scale_db",
            "prior_reads",
            "prior_rate_hz",
            "prior_gaps",
            "long_reads",
        )
        if any(getattr(self, name) <= 0 for name in positive):
            raise ValueError(f"EngineParams: {', '.join(positive)} must be positive")
        if not (0 < self.delta < 1 and 0 < self.prior_exceed < 1 and 0 <= self.pool_forget < 1):
            raise ValueError(
                "EngineParams: delta, prior_exceed must be in (0, 1), pool_forget [0, 1)"
            )
        if not 0 <= self.min_window_s <= self.max_window_s:
            raise ValueError("EngineParams: need 0 <= min_window_s <= max_window_s")

    def as_array(self) -> NDArray[np.float64]:
        vec = np.empty(layout.PARAM_FIELDS, np.float64)
        vec[layout.K_DEDUP_S] = self.dedup_s
        vec[layout.K_TAU_S] = self.tau_s
        vec[layout.K_ENTER_READS] = self.enter_reads
        vec[layout.K_HYSTERESIS] = self.hysteresis
        vec[layout.K_LN_INV_DELTA] = math.log(1.0 / self.delta)
        vec[layout.K_PRIOR_READS] = self.prior_reads
        vec[layout.K_PRIOR_RATE_HZ] = self.prior_rate_hz
        vec[layout.K_MIN_WINDOW_S] = self.min_window_s
        vec[layout.K_MAX_WINDOW_S] = self.max_window_s
        vec[layout.K_RSSI_REF_DBM] = self.rssi_ref_dbm
        vec[layout.K_RSSI_SCALE_DB] = self.rssi_scale_db
        vec[layout.K_TAIL_U] = self.tail_u
        vec[layout.K_PRIOR_GAPS] = self.prior_gaps
        vec[layout.K_PRIOR_EXCEED] = self.prior_exceed
        vec[layout.K_PRIOR_EXCESS] = self.prior_excess
        vec[layout.K_POOL_FORGET] = self.pool_forget
        vec[layout.K_REJOIN_S] = self.rejoin_s
        vec[layout.K_LONG_READS] = self.long_reads
        vec[layout.K_ENTER_SCORE] = self.enter_score
        return vec


class PresenceState:
    """The kernel's arrays, indexed by subject id; see ``gateway.stages.kernels.layout``."""

    def __init__(self, subjects: int, zones: int) -> None:
        self.subj = np.empty((subjects, layout.SUBJECT_FIELDS), np.float64)
        self.cur = np.empty(subjects, np.int32)
        self.pair = np.empty((subjects, zones, layout.PAIR_FIELDS), np.float64)
        self.pair_i = np.empty((subjects, zones, layout.PAIR_INT_FIELDS), np.int32)
        self.reset(slice(None))

    def reset(self, rows: slice | NDArray[np.intp]) -> None:
        """These rows as a subject never seen."""
        self.subj[rows] = 0.0
        self.subj[rows, layout.LEFT_AT] = -math.inf
        self.subj[rows, layout.LEFT_ZONE] = layout.NOWHERE
        self.cur[rows] = layout.NOWHERE
        self.pair[rows] = 0.0
        self.pair[rows, :, layout.P_LAST] = -math.inf
        self.pair[rows, :, layout.P_RSSI] = math.nan
        self.pair_i[rows] = -1

    def idle(self, before: float) -> NDArray[np.intp]:
        """Rows of subjects in no zone whose last read, in any zone, is at or before ``before``.

        A pending run (reads not yet enough to enter) is a read after ``before`` when ``before``
        is further back than a run can last (``max_window_s``)."""
        last = np.maximum(self.pair[:, :, layout.P_LAST].max(axis=1), self.subj[:, layout.LEFT_AT])
        gone = (self.cur == layout.NOWHERE) & (last > -math.inf) & (last <= before)
        return np.flatnonzero(gone)

    @property
    def capacity(self) -> int:
        return int(self.cur.shape[0])

    def grow_to(self, subjects: int) -> None:
        capacity = self.capacity
        while capacity < subjects:
            capacity *= 2
        if capacity == self.capacity:
            return
        fresh = PresenceState(capacity, self.pair.shape[1])
        n = self.capacity
        fresh.subj[:n], fresh.cur[:n] = self.subj, self.cur
        fresh.pair[:n], fresh.pair_i[:n] = self.pair, self.pair_i
        self.subj, self.cur, self.pair, self.pair_i = (
            fresh.subj, fresh.cur, fresh.pair, fresh.pair_i
        )  # fmt: skip


def _check_forget_after(forget_after_s: float, params: EngineParams) -> float:
    # A subject must be gone well past any run or window before its row can go.
    if not forget_after_s > max(params.max_window_s, params.rejoin_s):
        raise ValueError("forget_after_s must exceed max_window_s and rejoin_s")
    return forget_after_s


def _exact(
    batch: ReadBatch,
) -> tuple[
    NDArray[np.float64], NDArray[np.int32], NDArray[np.int32], NDArray[np.float32],
    NDArray[np.int32], NDArray[np.int16],
]:  # fmt: skip
    # The kernel is compiled for exactly these dtypes and C order; anything else would compile a
    # second version at run time. No copy when the batch already conforms (the normal case).
    return (
        np.ascontiguousarray(batch.t, np.float64),
        np.ascontiguousarray(batch.subject, np.int32),
        np.ascontiguousarray(batch.zone, np.int32),
        np.ascontiguousarray(batch.rssi, np.float32),
        np.ascontiguousarray(batch.device, np.int32),
        np.ascontiguousarray(batch.antenna, np.int16),
    )


class PresenceStage:
    def __init__(
        self,
        zones: Sequence[ZoneParams],
        params: EngineParams | None = None,
        *,
        subjects: Subjects | None = None,
        forget_after_s: float = FORGET_AFTER_S,
    ) -> None:
        """``subjects``: the interner whose ids the batches carry; forgotten subjects' ids are
        released there for reuse. ``forget_after_s``: see ``gateway.stages.kernels.layout``
        (``math.inf``: never forget)."""
        if not zones:
            raise ValueError("the presence stage needs at least one zone")
        self.zones = tuple(zones)
        self.params = params or EngineParams()
        self._params = self.params.as_array()
        self._dwell_s = np.array([z.dwell_s for z in self.zones], np.float64)
        self._state = PresenceState(INITIAL_SUBJECTS, len(self.zones))
        self._pool = prior_pool(self._params)
        self._out_f = np.empty((0, layout.OUT_FLOAT_FIELDS), np.float64)
        self._out_i = np.empty((0, layout.OUT_INT_FIELDS), np.int32)
        self._deadline = math.inf
        self._subjects = subjects
        self._forget_after_s = _check_forget_after(forget_after_s, self.params)
        self._next_sweep = -math.inf
        self.forgotten_total = 0

    def feed(self, batch: ReadBatch, now: float) -> list[Transition]:
        """No reads and no deadline due: nothing can change (the kernel would only find that
        out), so the kernel is not called."""
        n = 0
        if len(batch):
            self._check(batch)
            self._state.grow_to(int(batch.subject.max()) + 1)
            n = self._run(batch, now)
        elif now >= self._deadline:
            n = self._run(batch, now)
        if now >= self._next_sweep:  # after the kernel: this batch's reads count as activity
            self._forget(now)
        return self._transitions(n) if n else []

    def has_news(self, columns: ReadBatch, start: int, stop: int) -> bool:
        """Could the reads in rows ``start:stop`` of ``columns`` make a transition if fed now?
        False when each is of a subject already present in the read's zone (``any_news``):
        those may wait, and fed later they decide the same."""
        return bool(any_news(columns.subject, columns.zone, start, stop, self._state.cur))

    def _run(self, batch: ReadBatch, now: float) -> int:
        """The kernel on ``batch``: the transitions it wrote to the output rows."""
        self._reserve(5 * len(batch) + 2 * self._state.capacity)
        st = self._state
        n, self._deadline = feed_kernel(
            *_exact(batch),
            float(now), st.subj, st.cur, st.pair, st.pair_i, self._pool, self._dwell_s,
            self._params, self._out_f, self._out_i,
        )  # fmt: skip
        return int(n)

    @property
    def capacity(self) -> int:
        """Subject rows held: they grow by doubling; forgetting lets ids, so rows, be reused."""
        return self._state.capacity

    def next_deadline(self) -> float | None:
        return None if self._deadline == math.inf else float(self._deadline)

    def flush(self, now: float) -> list[Transition]:
        # Subjects still present stay present: shutdown is not evidence that anyone left.
        return self.feed(ReadBatch.empty(), now)

    def warm_up(self) -> None:
        """Load (or compile, on a cold cache) the kernel for exactly the types ``feed`` uses."""
        scratch = PresenceStage(self.zones[:1], self.params)
        one = ReadBatch.from_columns([0.0], [0], [0], [-60.0], [0], [1])
        scratch.has_news(one, 0, 1)
        scratch.feed(one, 0.0)

    def present(self) -> dict[int, int]:
        """Subject id -> zone id, for every subject currently in a zone."""
        (subjects,) = np.nonzero(self._state.cur != layout.NOWHERE)
        return {int(s): int(self._state.cur[s]) for s in subjects}

    def visits(self) -> dict[int, tuple[int, float]]:
        """Subject id -> (zone id, when its visit began), for every subject currently in a zone."""
        st = self._state
        (subjects,) = np.nonzero(st.cur != layout.NOWHERE)
        return {int(s): (int(st.cur[s]), float(st.subj[s, layout.SINCE])) for s in subjects}

    def _forget(self, now: float) -> None:
        """Forget every subject gone for ``forget_after_s``: its row is reset and its id released.

        Runs every ``forget_after_s / FORGET_SWEEPS`` (a few numpy passes over the state, never
        per read); a subject is therefore forgotten between 1 and 1 + 1/FORGET_SWEEPS times
        ``forget_after_s`` after its last read."""
        self._next_sweep = now + self._forget_after_s / layout.FORGET_SWEEPS
        rows = self._state.idle(now - self._forget_after_s)
        if not len(rows):
            return
        self._state.reset(rows)
        self.forgotten_total += len(rows)
        if self._subjects is not None:
            self._subjects.release(rows.tolist())

    def _check(self, batch: ReadBatch) -> None:
        if batch.zone.min() < 0 or batch.zone.max() >= len(self.zones):
            raise ValueError("read batch names a zone outside the zone table")
        if batch.subject.min() < 0:
            raise ValueError("read batch has a negative subject id")

    def _reserve(self, rows: int) -> None:
        if self._out_f.shape[0] < rows:
            rows = max(rows, 2 * self._out_f.shape[0])
            self._out_f = np.empty((rows, layout.OUT_FLOAT_FIELDS), np.float64)
            self._out_i = np.empty((rows, layout.OUT_INT_FIELDS), np.int32)

    def _transitions(self, n: int) -> list[Transition]:
        floats = self._out_f[:n].tolist()
        ints = self._out_i[:n].tolist()
        return [
            Transition(TransitionKind(kind), s, z, t, since, rssi, device, antenna)
            for (t, since, rssi), (kind, s, z, device, antenna) in zip(floats, ints, strict=True)
        ]
