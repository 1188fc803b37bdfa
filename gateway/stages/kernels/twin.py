"""Plain-Python twin of the presence kernel: the same decisions, written for reading.

State is dictionaries of small objects, as one would write it without numba. The test suite
drives the kernel and this twin with the same Hypothesis-generated streams and requires the same
transitions, so the twin is the executable specification and the kernel its fast form.
``bench/kernels.py`` measures the kernel against it.

Arithmetic is done in the kernel's order so that results agree to the last bit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from gateway.stages.kernels import layout
from gateway.stages.kernels.layout import DWELL, ENTER, EXIT, FORGET_SWEEPS

# (kind, subject, zone, t, since, rssi, device, antenna)
Row = tuple[int, int, int, float, float, float, int, int]
Read = tuple[float, int, int, float, int, int]  # t, subject, zone, rssi, device, antenna


@dataclass(frozen=True, slots=True)
class TwinParams:
    dedup_s: float
    tau_s: float
    enter_reads: float
    hysteresis: float
    ln_inv_delta: float
    prior_reads: float
    prior_rate_hz: float
    min_window_s: float
    max_window_s: float
    rssi_ref_dbm: float
    rssi_scale_db: float
    tail_u: float
    prior_gaps: float
    prior_exceed: float
    prior_excess: float
    pool_forget: float
    rejoin_s: float
    long_reads: float
    enter_score: float

    @classmethod
    def from_vector(cls, vec: Sequence[float]) -> TwinParams:
        """From the kernel's parameter vector (``EngineParams.as_array``)."""
        k = layout
        order = (
            k.K_DEDUP_S, k.K_TAU_S, k.K_ENTER_READS, k.K_HYSTERESIS, k.K_LN_INV_DELTA,
            k.K_PRIOR_READS, k.K_PRIOR_RATE_HZ, k.K_MIN_WINDOW_S, k.K_MAX_WINDOW_S,
            k.K_RSSI_REF_DBM, k.K_RSSI_SCALE_DB, k.K_TAIL_U, k.K_PRIOR_GAPS, k.K_PRIOR_EXCEED,
            k.K_PRIOR_EXCESS, k.K_POOL_FORGET, k.K_REJOIN_S, k.K_LONG_READS, k.K_ENTER_SCORE,
        )  # fmt: skip
        return cls(*(float(vec[k]) for k in order))


@dataclass(slots=True)
class Run:
    last: float = -math.inf
    start: float = 0.0
    score: float = 0.0
    reads: float = 0.0
    rssi: float = math.nan
    device: int = -1
    antenna: int = -1

    def score_at(self, t: float, tau: float) -> float:
        if self.last == -math.inf:
            return 0.0
        return self.score * math.exp(-max(t - self.last, 0.0) / tau)

    def note(self, rssi: float, device: int, antenna: int) -> None:
        stronger = rssi > self.rssi or (math.isnan(self.rssi) and not math.isnan(rssi))
        if self.device < 0 or stronger:
            self.rssi, self.device, self.antenna = rssi, device, antenna


@dataclass(slots=True)
class Visit:
    zone: int
    since: float
    last: float
    reads: float
    dwell_at: float
    heard: float = 0.0  # last read anywhere while in the zone (bleed included)
    window: float = 0.0


@dataclass(slots=True)
class Departure:
    zone: int
    last: float
    gap: float


@dataclass(slots=True)
class SilencePool:
    gaps: float = 0.0
    exceed: float = 0.0
    excess: float = 0.0


@dataclass
class PresenceTwin:
    params: TwinParams
    dwell_s: Sequence[float]
    visits: dict[int, Visit] = field(default_factory=dict)
    runs: dict[tuple[int, int], Run] = field(default_factory=dict)
    departures: dict[int, Departure] = field(default_factory=dict)
    pool: SilencePool = field(default_factory=SilencePool)
    out: list[Row] = field(default_factory=list)
    factor: float = 0.0  # the window in mean gaps, re-estimated at the start of each batch
    theta: float = 0.0  # mean excess of long silences, likewise
    forget_after_s: float = math.inf  # as PresenceStage's; inf: never forget
    next_sweep: float = -math.inf

    def __post_init__(self) -> None:
        p = self.params  # the pool starts as the prior, which is forgotten like any silence
        exceed = p.prior_gaps * p.prior_exceed
        self.pool = SilencePool(p.prior_gaps, exceed, exceed * p.prior_excess)

    def feed(self, reads: Sequence[Read], now: float) -> tuple[list[Row], float]:
        self.out = []
        self.factor, self.theta = self._tail_factor()
        for t, s, z, rssi, device, antenna in reads:
            self._advance(s, t)
            if self._count(s, z, t, rssi, device, antenna):
                self._resolve(s, z, t)
        for s in sorted(self.visits):
            self._advance(s, now)
        deadline = min(
            (min(v.heard + v.window, v.dwell_at) for v in self.visits.values()), default=math.inf
        )
        if now >= self.next_sweep:
            self._forget(now)
        return self.out, deadline

    def _forget(self, now: float) -> None:
        """Drop what is known of subjects in no zone and not read since forget_after_s ago."""
        self.next_sweep = now + self.forget_after_s / FORGET_SWEEPS
        last: dict[int, float] = {}
        for (s, _), run in self.runs.items():
            last[s] = max(last.get(s, -math.inf), run.last)
        for s, gone in self.departures.items():
            last[s] = max(last.get(s, -math.inf), gone.last)
        forget = {
            s for s, t in last.items()
            if s not in self.visits and -math.inf < t <= now - self.forget_after_s
        }  # fmt: skip
        self.runs = {key: run for key, run in self.runs.items() if key[0] not in forget}
        self.departures = {s: d for s, d in self.departures.items() if s not in forget}

    def _run(self, s: int, z: int) -> Run:
        return self.runs.setdefault((s, z), Run())

    def _mean_gap(self, v: Visit) -> float:
        p = self.params
        return ((v.last - v.since) + p.prior_reads / p.prior_rate_hz) / (
            v.reads - 1.0 + p.prior_reads
        )

    def _tail_factor(self) -> tuple[float, float]:
        p, pool = self.params, self.pool
        pi = pool.exceed / pool.gaps
        theta = pool.excess / pool.exceed
        return p.tail_u + theta * max(math.log(pi) + p.ln_inv_delta, 0.0), theta

    def _window(self, v: Visit) -> float:
        p, factor = self.params, self.factor
        if v.reads > p.long_reads:
            factor += self.theta * math.log(v.reads / p.long_reads)
        return min(max(self._mean_gap(v) * factor, p.min_window_s), p.max_window_s)

    def _note_silence(self, silence: float) -> None:
        keep, over, pool = 1.0 - self.params.pool_forget, silence - self.params.tail_u, self.pool
        pool.gaps = pool.gaps * keep + 1.0
        pool.exceed = pool.exceed * keep + (1.0 if over > 0.0 else 0.0)
        pool.excess = pool.excess * keep + max(over, 0.0)

    def _advance(self, s: int, now: float) -> None:
        v = self.visits.get(s)
        if v is None:
            return
        exit_at = v.heard + v.window
        if v.dwell_at <= now and v.dwell_at < exit_at:
            self.out.append((DWELL, s, v.zone, v.dwell_at, v.since, math.nan, -1, -1))
            v.dwell_at = math.inf
        if exit_at <= now:
            self._leave(s)

    def _leave(self, s: int) -> None:
        v = self.visits.pop(s)
        self.out.append((EXIT, s, v.zone, v.last, v.since, math.nan, -1, -1))
        self.departures[s] = Departure(v.zone, v.last, self._mean_gap(v))
        self._run(s, v.zone).last = -math.inf

    def _count(self, s: int, z: int, t: float, rssi: float, device: int, antenna: int) -> bool:
        run, p = self._run(s, z), self.params
        gap = t - run.last
        if gap < p.dedup_s:
            run.note(rssi, device, antenna)
            return False
        if gap > p.max_window_s:
            run.start, run.reads, run.score = t, 0.0, 0.0
            run.rssi, run.device = math.nan, -1
        weight = 1.0 if math.isnan(rssi) else math.exp((rssi - p.rssi_ref_dbm) / p.rssi_scale_db)
        run.score = run.score_at(t, p.tau_s) + weight
        run.last = t
        run.reads += 1.0
        run.note(rssi, device, antenna)
        return True

    def _resolve(self, s: int, z: int, t: float) -> None:
        v, run, p = self.visits.get(s), self._run(s, z), self.params
        if v is not None and v.zone == z:
            self._note_silence((t - v.last) / self._mean_gap(v))
            v.last, v.heard, v.reads = t, t, v.reads + 1.0
            v.window = self._window(v)
            return
        weak = not math.isnan(run.rssi) and run.score < p.enter_score
        if run.reads < p.enter_reads or weak:
            if v is not None:
                v.heard = t
            return
        if v is None:
            others = [
                r.score_at(t, p.tau_s) for (s2, z2), r in self.runs.items() if s2 == s and z2 != z
            ]
            if run.score >= max(others, default=0.0):
                gone = self.departures.get(s)
                if gone and gone.zone == z and run.start - gone.last <= p.rejoin_s:
                    self._note_silence((run.start - gone.last) / gone.gap)
                self._enter(s, z, t, run.start)
            return
        if run.score > (1.0 + p.hysteresis) * self._run(s, v.zone).score_at(t, p.tau_s):
            since = max(run.start, v.last)
            self._leave(s)
            self._enter(s, z, t, since)
        else:
            v.heard = t  # bleed: still near its zone

    def _enter(self, s: int, z: int, t: float, since: float) -> None:
        run = self.runs[(s, z)]
        v = Visit(z, since, t, run.reads, since + self.dwell_s[z], heard=t)
        v.window = self._window(v)
        self.visits[s] = v
        self.out.append((ENTER, s, z, since, since, run.rssi, run.device, run.antenna))
        self._advance(s, t)
