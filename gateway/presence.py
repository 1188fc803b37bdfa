"""The presence stage: read batches in, zone enter / dwell / exit transitions out.

All per-read work happens in one numba kernel call per batch (``gateway.kernels.presence``);
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

from gateway.kernels import layout
from gateway.kernels.presence import feed as feed_kernel
from gateway.reads import ReadBatch
from gateway.transitions import Transition, TransitionKind

INITIAL_SUBJECTS: Final = 64  # rows double from here as subject ids grow


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
    hysteresis: float = 0.5  # another zone must score (1 + h) times the current one
    tau_s: float = 0.5  # decay of the zone score
    prior_reads: float = 2.0
    prior_rate_hz: float = 4.0
    min_window_s: float = 0.3
    max_window_s: float = 2.0  # the exit latency we accept for the sparsest tag
    rssi_ref_dbm: float = -60.0
    rssi_scale_db: float = 6.0
    # Silence tail (gateway/kernels/smoothing.py), in units of a tag's mean gap between reads.
    tail_u: float = 2.0  # threshold above which a silence counts as a tail sample
    prior_gaps: float = 200.0  # weight of the prior, in silences
    prior_exceed: float = 0.1  # prior chance that a silence exceeds tail_u
    prior_excess: float = 1.0  # prior mean overshoot of those
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
        return vec


class PresenceState:
    """The kernel's arrays, indexed by subject id; see ``gateway.kernels.layout``."""

    def __init__(self, subjects: int, zones: int) -> None:
        self.subj = np.zeros((subjects, layout.SUBJECT_FIELDS), np.float64)
        self.subj[:, layout.LEFT_AT] = -math.inf
        self.subj[:, layout.LEFT_ZONE] = layout.NOWHERE
        self.cur = np.full(subjects, layout.NOWHERE, np.int32)
        self.pair = np.zeros((subjects, zones, layout.PAIR_FIELDS), np.float64)
        self.pair[:, :, layout.P_LAST] = -math.inf
        self.pair[:, :, layout.P_RSSI] = math.nan
        self.pair_i = np.full((subjects, zones, layout.PAIR_INT_FIELDS), -1, np.int32)

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
    def __init__(self, zones: Sequence[ZoneParams], params: EngineParams | None = None) -> None:
        if not zones:
            raise ValueError("the presence stage needs at least one zone")
        self.zones = tuple(zones)
        self.params = params or EngineParams()
        self._params = self.params.as_array()
        self._dwell_s = np.array([z.dwell_s for z in self.zones], np.float64)
        self._state = PresenceState(INITIAL_SUBJECTS, len(self.zones))
        self._pool = np.zeros(layout.POOL_FIELDS, np.float64)
        self._out_f = np.empty((0, layout.OUT_FLOAT_FIELDS), np.float64)
        self._out_i = np.empty((0, layout.OUT_INT_FIELDS), np.int32)
        self._deadline = math.inf

    def feed(self, batch: ReadBatch, now: float) -> list[Transition]:
        if len(batch):
            self._check(batch)
            self._state.grow_to(int(batch.subject.max()) + 1)
        self._reserve(5 * len(batch) + 2 * self._state.capacity)
        st = self._state
        n, self._deadline = feed_kernel(
            *_exact(batch),
            float(now), st.subj, st.cur, st.pair, st.pair_i, self._pool, self._dwell_s,
            self._params, self._out_f, self._out_i,
        )  # fmt: skip
        return self._transitions(int(n))

    def next_deadline(self) -> float | None:
        return None if self._deadline == math.inf else float(self._deadline)

    def flush(self, now: float) -> list[Transition]:
        # Subjects still present stay present: shutdown is not evidence that anyone left.
        return self.feed(ReadBatch.empty(), now)

    def warm_up(self) -> None:
        """Load (or compile, on a cold cache) the kernel for exactly the types ``feed`` uses."""
        scratch = PresenceStage(self.zones[:1], self.params)
        one = ReadBatch.from_columns([0.0], [0], [0], [-60.0], [0], [1])
        scratch.feed(one, 0.0)

    def present(self) -> dict[int, int]:
        """Subject id -> zone id, for every subject currently in a zone."""
        (subjects,) = np.nonzero(self._state.cur != layout.NOWHERE)
        return {int(s): int(self._state.cur[s]) for s in subjects}

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
