"""Zone resolution: which zone's antennas really see the tag.

A tag near the edge of a zone is also read, less often and more weakly, by the neighbouring
zone's antennas ("bleed"). Each (subject, zone) pair keeps a score: a count of reads, each
weighted by its RSSI relative to ``rssi_ref_dbm`` (e-fold per ``rssi_scale_db``), decaying with
time constant ``tau_s``. The score is therefore a smoothed, RSSI-weighted read rate. A subject
with no zone enters the zone whose score is highest; a subject in a zone moves only when another
zone's score beats its current zone's by the factor ``1 + hysteresis``, so that bleed flickering
around parity does not bounce it between zones.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from gateway.stages.kernels.jit import kernel
from gateway.stages.kernels.layout import P_LAST, P_SCORE


@kernel
def read_weight(rssi: float, rssi_ref: float, rssi_scale: float) -> float:
    if math.isnan(rssi):  # readers without RSSI: every read counts the same
        return 1.0
    return math.exp((rssi - rssi_ref) / rssi_scale)


@kernel
def decayed(score: float, elapsed: float, tau: float) -> float:
    if elapsed == math.inf:  # no run: nothing to decay (and 0 * inf would be NaN)
        return 0.0
    return score * math.exp(-max(elapsed, 0.0) / tau)


@kernel
def score_at(pair: NDArray[np.float64], s: int, z: int, t: float, tau: float) -> float:
    score: float = decayed(pair[s, z, P_SCORE], t - pair[s, z, P_LAST], tau)
    return score


@kernel
def strongest_other(pair: NDArray[np.float64], s: int, z: int, t: float, tau: float) -> float:
    best = 0.0
    for other in range(pair.shape[1]):
        if other != z:
            best = max(best, score_at(pair, s, other, t, tau))
    return best
