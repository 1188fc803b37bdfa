"""The presence kernel: one call consumes a whole batch of reads and the passage of time.

Per read, in order: first let time catch up with the read's subject (a dwell or an exit may have
fallen due before this read arrived), then count the read as evidence for its (subject, zone)
pair and let zone resolution decide whether the subject enters, stays or moves. After the batch,
every subject is advanced to ``now``, which is how an empty batch turns silence into exits.

Transitions are written to ``out_f`` / ``out_i`` in the order they are decided, which is causal
per subject. The caller sizes the output for the worst case: 5 rows per read (due dwell, exit;
exit, enter and an immediately due dwell on a move) plus 2 per subject for the final sweep.

Speed: a call from one compiled function to another that passes arrays costs reference counting
on each array, which is several times the arithmetic of a read. So the common path (a read of a
subject in the zone it is already in) is written out in ``feed`` with scalar helpers only, and
the array-taking helpers run only when something changes.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from gateway.stages.kernels.jit import kernel
from gateway.stages.kernels.layout import (
    DWELL,
    DWELL_AT,
    ENTER,
    EXIT,
    G_EXCEED,
    G_EXCESS,
    G_GAPS,
    HEARD,
    K_DEDUP_S,
    K_ENTER_READS,
    K_ENTER_SCORE,
    K_HYSTERESIS,
    K_LONG_READS,
    K_MAX_WINDOW_S,
    K_MIN_WINDOW_S,
    K_POOL_FORGET,
    K_PRIOR_RATE_HZ,
    K_PRIOR_READS,
    K_REJOIN_S,
    K_RSSI_REF_DBM,
    K_RSSI_SCALE_DB,
    K_TAIL_U,
    K_TAU_S,
    LAST,
    LEFT_AT,
    LEFT_GAP,
    LEFT_ZONE,
    NOWHERE,
    NREADS,
    O_ANTENNA,
    O_DEVICE,
    O_KIND,
    O_RSSI,
    O_SINCE,
    O_SUBJECT,
    O_T,
    O_ZONE,
    P_ANTENNA,
    P_DEVICE,
    P_LAST,
    P_NRUN,
    P_RSSI,
    P_SCORE,
    P_START,
    SINCE,
    WINDOW,
)
from gateway.stages.kernels.smoothing import add_silence, clamp_window, mean_gap, tail_factor
from gateway.stages.kernels.zones import decayed, read_weight, score_at, strongest_other

F64 = NDArray[np.float64]
I32 = NDArray[np.int32]


@kernel
def emit(
    out_f: F64, out_i: I32, n: int, kind: int, s: int, z: int,
    t: float, since: float, rssi: float, device: int, antenna: int,
) -> int:  # fmt: skip
    out_f[n, O_T] = t
    out_f[n, O_SINCE] = since
    out_f[n, O_RSSI] = rssi
    out_i[n, O_KIND] = kind
    out_i[n, O_SUBJECT] = s
    out_i[n, O_ZONE] = z
    out_i[n, O_DEVICE] = device
    out_i[n, O_ANTENNA] = antenna
    return n + 1


@kernel
def visit_gap(subj: F64, s: int, params: F64) -> float:
    duration = subj[s, LAST] - subj[s, SINCE]
    return mean_gap(subj[s, NREADS], duration, params[K_PRIOR_READS], params[K_PRIOR_RATE_HZ])


@kernel
def visit_window(subj: F64, s: int, params: F64, factor: float, theta: float) -> float:
    return clamp_window(
        visit_gap(subj, s, params), subj[s, NREADS], factor, theta, params[K_LONG_READS],
        params[K_MIN_WINDOW_S], params[K_MAX_WINDOW_S],
    )  # fmt: skip


@kernel
def is_due(dwell_at: float, heard: float, window: float, now: float) -> bool:
    return dwell_at <= now or heard + window <= now


@kernel
def leave(
    s: int, subj: F64, cur: I32, pair: F64, params: F64, out_f: F64, out_i: I32, n: int
) -> int:
    z = cur[s]
    n = emit(out_f, out_i, n, EXIT, s, z, subj[s, LAST], subj[s, SINCE], math.nan, -1, -1)
    cur[s] = NOWHERE
    subj[s, LEFT_AT] = subj[s, LAST]
    subj[s, LEFT_ZONE] = z
    subj[s, LEFT_GAP] = visit_gap(subj, s, params)
    pair[s, z, P_LAST] = -math.inf  # the next read there is the start of a new run
    return n


@kernel
def advance(
    s: int, now: float, subj: F64, cur: I32, pair: F64, params: F64, out_f: F64, out_i: I32,
    n: int,
) -> int:  # fmt: skip
    z = cur[s]
    if z == NOWHERE:
        return n
    exit_at = subj[s, HEARD] + subj[s, WINDOW]
    dwell_at = subj[s, DWELL_AT]
    # A dwell due at the very moment the window closes never happened: the exit wins the tie.
    if dwell_at <= now and dwell_at < exit_at:
        n = emit(out_f, out_i, n, DWELL, s, z, dwell_at, subj[s, SINCE], math.nan, -1, -1)
        subj[s, DWELL_AT] = math.inf
    if exit_at <= now:
        n = leave(s, subj, cur, pair, params, out_f, out_i, n)
    return n


@kernel
def enter(
    s: int, z: int, t: float, since: float, subj: F64, cur: I32, pair: F64, pair_i: I32,
    dwell_s: F64, params: F64, factor: float, theta: float, out_f: F64, out_i: I32, n: int,
) -> int:  # fmt: skip
    cur[s] = z
    subj[s, SINCE] = since
    subj[s, LAST] = t
    subj[s, HEARD] = t
    subj[s, NREADS] = pair[s, z, P_NRUN]
    subj[s, WINDOW] = visit_window(subj, s, params, factor, theta)
    subj[s, DWELL_AT] = since + dwell_s[z]
    rssi = pair[s, z, P_RSSI]
    n = emit(out_f, out_i, n, ENTER, s, z, since, since, rssi, pair_i[s, z, P_DEVICE],
             pair_i[s, z, P_ANTENNA])  # fmt: skip
    # Confirmation can lag the run's first read; the dwell may already be due.
    return advance(s, t, subj, cur, pair, params, out_f, out_i, n)


@kernel
def takes_over(best: float, rssi: float, fresh: bool) -> bool:
    # A fresh run takes its first read whatever it says; a reported RSSI beats none.
    return fresh or rssi > best or (math.isnan(best) and not math.isnan(rssi))


@kernel
def note_strongest(
    pair: F64, pair_i: I32, s: int, z: int, rssi: float, device: int, antenna: int
) -> None:
    if takes_over(pair[s, z, P_RSSI], rssi, pair_i[s, z, P_DEVICE] < 0):
        pair[s, z, P_RSSI] = rssi
        pair_i[s, z, P_DEVICE] = device
        pair_i[s, z, P_ANTENNA] = antenna


@kernel
def note_rejoin(s: int, z: int, since: float, subj: F64, pool: F64, params: F64) -> None:
    """A quick return to the zone just left: the silence was (probably) misses after all."""
    silence = since - subj[s, LEFT_AT]
    if subj[s, LEFT_ZONE] == z and silence <= params[K_REJOIN_S]:
        pool[G_GAPS], pool[G_EXCEED], pool[G_EXCESS] = add_silence(
            pool[G_GAPS], pool[G_EXCEED], pool[G_EXCESS], silence / subj[s, LEFT_GAP],
            params[K_TAIL_U], 1.0 - params[K_POOL_FORGET],
        )  # fmt: skip


@kernel
def strong_enough(reads: float, score: float, rssi: float, params: F64) -> bool:
    """Can this run take the subject? One stray read never can, nor faint bleed on its own."""
    if reads < params[K_ENTER_READS]:
        return False
    # A run with no RSSI (card readers) has only its count to go by.
    return math.isnan(rssi) or score >= params[K_ENTER_SCORE]


@kernel
def resolve(
    s: int, z: int, t: float, subj: F64, cur: I32, pair: F64, pair_i: I32, pool: F64,
    dwell_s: F64, params: F64, factor: float, theta: float, out_f: F64, out_i: I32, n: int,
) -> int:  # fmt: skip
    """A counted read in a zone the subject is not in: enter it, move to it, or wait."""
    c = cur[s]
    score = pair[s, z, P_SCORE]
    if not strong_enough(pair[s, z, P_NRUN], score, pair[s, z, P_RSSI], params):
        if c != NOWHERE:
            heard(s, t, subj)
        return n
    tau = params[K_TAU_S]
    if c == NOWHERE:
        if score >= strongest_other(pair, s, z, t, tau):
            since = pair[s, z, P_START]
            note_rejoin(s, z, since, subj, pool, params)
            n = enter(s, z, t, since, subj, cur, pair, pair_i, dwell_s, params, factor, theta,
                      out_f, out_i, n)  # fmt: skip
        return n
    if score > (1.0 + params[K_HYSTERESIS]) * score_at(pair, s, c, t, tau):
        # The run here may have begun as bleed while the subject was still in c.
        since = max(pair[s, z, P_START], subj[s, LAST])
        n = leave(s, subj, cur, pair, params, out_f, out_i, n)
        n = enter(s, z, t, since, subj, cur, pair, pair_i, dwell_s, params, factor, theta,
                  out_f, out_i, n)  # fmt: skip
    else:
        heard(s, t, subj)
    return n


@kernel
def heard(s: int, t: float, subj: F64) -> None:
    # A neighbour's antenna hearing the tag faintly (bleed) while its own zone's antennas miss
    # it means it is still near, not gone: the exit window restarts, the visit's end does not.
    subj[s, HEARD] = t


@kernel
def next_deadline(subj: F64, cur: I32) -> float:
    best = math.inf
    for s in range(cur.shape[0]):
        if cur[s] != NOWHERE:
            best = min(best, subj[s, HEARD] + subj[s, WINDOW], subj[s, DWELL_AT])
    return best


@kernel
def any_news(subject: I32, zone: I32, start: int, stop: int, cur: I32) -> bool:
    """Could the reads in rows ``start:stop`` change anything now? Not if each is of a subject
    already present in the read's zone: fed later, such a read only refreshes that visit, and
    ``feed`` takes every read at its own time, so the later feed decides the same."""
    for i in range(start, stop):
        s = subject[i]
        if s >= cur.shape[0] or cur[s] != zone[i]:
            return True
    return False


@kernel
def feed(  # the common path is written out for speed; see the module docstring
    t: F64, subject: I32, zone: I32, rssi: NDArray[np.float32], device: I32,
    antenna: NDArray[np.int16], now: float, subj: F64, cur: I32, pair: F64, pair_i: I32,
    pool: F64, dwell_s: F64, params: F64, out_f: F64, out_i: I32,
) -> tuple[int, float]:  # fmt: skip
    dedup, run_gap, tau = params[K_DEDUP_S], params[K_MAX_WINDOW_S], params[K_TAU_S]
    ref, scale = params[K_RSSI_REF_DBM], params[K_RSSI_SCALE_DB]
    prior_reads, prior_rate = params[K_PRIOR_READS], params[K_PRIOR_RATE_HZ]
    tail_u, keep = params[K_TAIL_U], 1.0 - params[K_POOL_FORGET]
    lo, hi = params[K_MIN_WINDOW_S], params[K_MAX_WINDOW_S]
    factor, theta = tail_factor(pool, params)
    long_reads = params[K_LONG_READS]
    n = 0
    for i in range(t.shape[0]):
        s, z, ti, ri = subject[i], zone[i], t[i], float(rssi[i])
        if cur[s] != NOWHERE and is_due(subj[s, DWELL_AT], subj[s, HEARD], subj[s, WINDOW], ti):
            n = advance(s, ti, subj, cur, pair, params, out_f, out_i, n)
        gap = ti - pair[s, z, P_LAST]
        if gap < dedup:  # one read reported twice (two antennas, one inventory round)
            note_strongest(pair, pair_i, s, z, ri, device[i], antenna[i])
            continue
        if gap > run_gap:  # a new run of reads in this zone
            pair[s, z, P_START] = ti
            pair[s, z, P_NRUN] = 0.0
            pair[s, z, P_SCORE] = 0.0
            pair[s, z, P_RSSI] = math.nan
            pair_i[s, z, P_DEVICE] = -1
        pair[s, z, P_SCORE] = decayed(pair[s, z, P_SCORE], gap, tau) + read_weight(ri, ref, scale)
        pair[s, z, P_LAST] = ti
        pair[s, z, P_NRUN] += 1.0
        if takes_over(pair[s, z, P_RSSI], ri, pair_i[s, z, P_DEVICE] < 0):
            pair[s, z, P_RSSI], pair_i[s, z, P_DEVICE], pair_i[s, z, P_ANTENNA] = (
                ri, device[i], antenna[i]
            )  # fmt: skip
        if cur[s] == z:  # the subject stays: fold the silence into the pool, widen or narrow
            last, since, reads = subj[s, LAST], subj[s, SINCE], subj[s, NREADS]
            silence = (ti - last) / mean_gap(reads, last - since, prior_reads, prior_rate)
            pool[G_GAPS], pool[G_EXCEED], pool[G_EXCESS] = add_silence(
                pool[G_GAPS], pool[G_EXCEED], pool[G_EXCESS], silence, tail_u, keep
            )
            subj[s, LAST], subj[s, HEARD], subj[s, NREADS] = ti, ti, reads + 1.0
            mu = mean_gap(reads + 1.0, ti - since, prior_reads, prior_rate)
            subj[s, WINDOW] = clamp_window(mu, reads + 1.0, factor, theta, long_reads, lo, hi)
        else:
            n = resolve(s, z, ti, subj, cur, pair, pair_i, pool, dwell_s, params, factor, theta,
                        out_f, out_i, n)  # fmt: skip
    for s in range(cur.shape[0]):
        if cur[s] != NOWHERE and is_due(subj[s, DWELL_AT], subj[s, HEARD], subj[s, WINDOW], now):
            n = advance(s, now, subj, cur, pair, params, out_f, out_i, n)
    return n, next_deadline(subj, cur)
