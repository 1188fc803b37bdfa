"""Adaptive exit window, after SMURF (Jeffery, Garofalakis, Franklin, VLDB 2006).

A fixed window is wrong both ways: too short and a tag with a poor read rate drops out of a
visit on every run of misses; too long and every exit is reported late. SMURF sizes each tag's
window from its own read rate so that "no read for w" means "gone" with confidence 1 - delta.

SMURF's binomial model assumes independent misses; real misses come in bursts (a hand over the
tag), and a window sized for independent misses splits visits on every long burst. So the window
here has two parts:

* the tag's own scale: its mean gap between reads in this visit, mu, from its read count and
  duration with a weak prior (``prior_reads`` reads at ``prior_rate_hz``);
* the shape of the silence tail, in units of mu, pooled over all tags (they share the radio
  channel) and learned online: peaks over a threshold u. Silences longer than u*mu occur with
  probability pi and overshoot u by an exponentially distributed theta (mean excess), which is
  exact for geometric miss runs, independent or Markov-bursty. Then
  P(silence > w) = pi * exp(-(w/mu - u) / theta), and the window for confidence delta is
  w = mu * (u + theta * ln(pi / delta)).

Delta bounds the chance that one silence is mistaken for a departure; a visit of N silences
risks about N * delta, so long visits (items on a shelf, for hours) would be split more and more
often. Past ``long_reads`` reads, the per-silence confidence is therefore tightened to
delta * long_reads / N, which adds theta * ln(N / long_reads) to the window in mean gaps: the
chance of a split then grows with the logarithm of a visit's length, not linearly, for a few
hundred milliseconds more on the exits of long visits.

The tail factor (u + theta * ln(pi / delta)) moves slowly, so it is re-estimated once per batch,
which keeps a logarithm out of the per-read path of short visits.

The pool forgets geometrically (``pool_forget`` per silence), so it follows a changing shop. It
starts as a prior worth ``prior_gaps`` silences (``prior_pool``), forgotten like them: at start-up
the pool has seen only silences that already ended, the long ones are missing, and a prior that
assumes a bursty channel keeps the first windows from coming out too short. A silence that did
end a visit is censored: never seen in the pool, which would teach the pool that long silences
do not happen. So a tag that comes back to the zone it just left within ``rejoin_s`` has its
silence added to the pool (``note_rejoin`` in the presence kernel): a visit split by a burst is
the evidence it lacked.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from gateway.stages.kernels.jit import kernel
from gateway.stages.kernels.layout import (
    G_EXCEED,
    G_EXCESS,
    G_GAPS,
    K_LN_INV_DELTA,
    K_PRIOR_EXCEED,
    K_PRIOR_EXCESS,
    K_PRIOR_GAPS,
    K_TAIL_U,
    POOL_FIELDS,
)

F64 = NDArray[np.float64]


@kernel
def mean_gap(nreads: float, duration: float, prior_reads: float, prior_rate_hz: float) -> float:
    return (duration + prior_reads / prior_rate_hz) / (nreads - 1.0 + prior_reads)


@kernel
def add_silence(
    gaps: float, exceed: float, excess: float, silence: float, tail_u: float, keep: float
) -> tuple[float, float, float]:
    """The pool's three sums after one more silence (in mean gaps); ``keep`` = 1 - forget."""
    over = silence - tail_u
    return (
        gaps * keep + 1.0,
        exceed * keep + (1.0 if over > 0.0 else 0.0),
        excess * keep + max(over, 0.0),
    )


def prior_pool(params: F64) -> F64:
    """The pool a stage starts from: ``prior_gaps`` silences of the prior's tail shape."""
    pool = np.zeros(POOL_FIELDS, np.float64)
    pool[G_GAPS] = params[K_PRIOR_GAPS]
    pool[G_EXCEED] = params[K_PRIOR_GAPS] * params[K_PRIOR_EXCEED]
    pool[G_EXCESS] = pool[G_EXCEED] * params[K_PRIOR_EXCESS]
    return pool


@kernel
def tail_factor(pool: F64, params: F64) -> tuple[float, float]:
    """(u + theta * ln(pi / delta), theta): the window in mean gaps, and the mean excess."""
    pi = pool[G_EXCEED] / pool[G_GAPS]
    theta = pool[G_EXCESS] / pool[G_EXCEED]
    factor: float = params[K_TAIL_U] + theta * max(math.log(pi) + params[K_LN_INV_DELTA], 0.0)
    return factor, float(theta)


@kernel
def clamp_window(
    mu: float, reads: float, factor: float, theta: float, long_reads: float,
    min_window: float, max_window: float,
) -> float:  # fmt: skip
    if reads > long_reads:  # delta * long_reads / reads per silence: see the module docstring
        factor += theta * math.log(reads / long_reads)
    return min(max(mu * factor, min_window), max_window)
