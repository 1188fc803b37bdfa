"""Adaptive exit window, after SMURF (Jeffery, Garofalakis, Franklin, VLDB 2006).

A fixed window is wrong both ways: too short and a tag with a poor read rate drops out of a
visit on every run of misses; too long and every exit is reported late. SMURF sizes each tag's
window from its own observed read rate so that "no read for w seconds" means "gone" with a
chosen confidence 1 - delta.

In continuous time, model a present tag's reads as a Poisson process of rate lambda: the chance of
a silence of w while present is exp(-lambda * w), so w* = ln(1/delta) / lambda. For per-attempt
independent misses (miss probability m, attempt rate r) the true tail m^(r w) is lighter than the
Poisson one, so the window errs long, i.e. safe. lambda is estimated over the visit with a weak
prior (``prior_reads`` reads at ``prior_rate_hz``) so the first reads do not make it absurd.

Bursty misses break independence; a visit that has already shown a silence of g is not left on a
silence of g, so the window is also at least ``burst_factor * maxgap``. Both are clamped to
[min_window_s, max_window_s]: the upper bound is the exit latency we are willing to pay.
"""

from __future__ import annotations

from gateway.kernels.jit import kernel


@kernel
def exit_window(
    nreads: float,
    duration: float,
    maxgap: float,
    ln_inv_delta: float,
    prior_reads: float,
    prior_rate_hz: float,
    burst_factor: float,
    min_window: float,
    max_window: float,
) -> float:
    rate = (nreads - 1.0 + prior_reads) / (duration + prior_reads / prior_rate_hz)
    window = max(ln_inv_delta / rate, burst_factor * maxgap)
    return min(max(window, min_window), max_window)
