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

The pool forgets geometrically (``pool_forget`` per silence), so it follows a changing shop, and
starts from a prior worth ``prior_gaps`` silences. A silence that did end a visit is censored:
never seen in the pool, which would teach the pool that long silences do not happen. So a tag
that comes back to the zone it just left within ``rejoin_s`` has its silence added to the pool
(``note_silence`` on re-entry): a visit split by a burst is exactly the evidence the pool lacked.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from gateway.kernels.jit import kernel
from gateway.kernels.layout import (
    G_EXCEED,
    G_EXCESS,
    G_GAPS,
    K_LN_INV_DELTA,
    K_MAX_WINDOW_S,
    K_MIN_WINDOW_S,
    K_POOL_FORGET,
    K_PRIOR_EXCEED,
    K_PRIOR_EXCESS,
    K_PRIOR_GAPS,
    K_PRIOR_RATE_HZ,
    K_PRIOR_READS,
    K_TAIL_U,
)

F64 = NDArray[np.float64]


@kernel
def mean_gap(nreads: float, duration: float, params: F64) -> float:
    prior_reads = params[K_PRIOR_READS]
    gap: float = (duration + prior_reads / params[K_PRIOR_RATE_HZ]) / (nreads - 1.0 + prior_reads)
    return gap


@kernel
def note_silence(pool: F64, silence: float, params: F64) -> None:
    """Add one silence, in units of the tag's mean gap, to the pooled tail statistics."""
    keep = 1.0 - params[K_POOL_FORGET]
    over = silence - params[K_TAIL_U]
    pool[G_GAPS] = pool[G_GAPS] * keep + 1.0
    pool[G_EXCEED] = pool[G_EXCEED] * keep + (1.0 if over > 0.0 else 0.0)
    pool[G_EXCESS] = pool[G_EXCESS] * keep + max(over, 0.0)


@kernel
def exit_window(mu: float, pool: F64, params: F64) -> float:
    prior_gaps = params[K_PRIOR_GAPS]
    prior_exceed = prior_gaps * params[K_PRIOR_EXCEED]
    exceed = pool[G_EXCEED] + prior_exceed
    pi = exceed / (pool[G_GAPS] + prior_gaps)
    theta = (pool[G_EXCESS] + prior_exceed * params[K_PRIOR_EXCESS]) / exceed
    tail = max(math.log(pi) + params[K_LN_INV_DELTA], 0.0)  # ln(pi / delta)
    window = mu * (params[K_TAIL_U] + theta * tail)
    return float(min(max(window, params[K_MIN_WINDOW_S]), params[K_MAX_WINDOW_S]))
