"""Column layout of the presence state arrays shared by the kernels and the stage.

State is kept in preallocated numpy arrays indexed by interned subject id, so a batch is one
kernel call with no Python objects per read. Rows grow by doubling when new subjects appear.

* ``subj[s, :]`` (float64): the subject's current visit, if ``cur[s] >= 0``.
* ``cur[s]`` (int32): the zone the subject is in, or ``NOWHERE``.
* ``pair[s, z, :]`` (float64): per (subject, zone) evidence: the current run of reads.
* ``pair_i[s, z, :]`` (int32): device and antenna of the run's strongest read.
* ``pool`` (float64): silence statistics pooled over every tag, the miss process's burstiness.
* ``out_f`` / ``out_i``: transitions written by a kernel call, one row each.
"""

from __future__ import annotations

from typing import Final

NOWHERE: Final = -1

# subj columns
SINCE: Final = 0  # the visit began (first read of the run that entered)
LAST: Final = 1  # last counted read in the current zone
NREADS: Final = 2  # counted reads in the visit
WINDOW: Final = 3  # adaptive exit window, recomputed on every counted read
DWELL_AT: Final = 4  # when presence.dwell is due; +inf once emitted
LEFT_AT: Final = 5  # last read of the subject's previous visit; -inf: none
LEFT_ZONE: Final = 6  # zone of that visit (as a float; -1: none)
LEFT_GAP: Final = 7  # that visit's mean gap between reads
HEARD: Final = 8  # last read of the subject anywhere while in its zone; the window runs from here
SUBJECT_FIELDS: Final = 9

# pool entries: exponentially forgetting sums over in-visit silences, in units of the mean gap
G_GAPS: Final = 0  # silences seen
G_EXCEED: Final = 1  # of which longer than K_TAIL_U mean gaps
G_EXCESS: Final = 2  # sum of (silence - K_TAIL_U) over those
POOL_FIELDS: Final = 3

# pair columns
P_LAST: Final = 0  # last counted read of this subject in this zone; -inf: no run
P_START: Final = 1  # first read of the current run
P_SCORE: Final = 2  # RSSI-weighted read count, decayed exponentially, as of P_LAST
P_NRUN: Final = 3  # counted reads in the run
P_RSSI: Final = 4  # strongest RSSI of the run; NaN when none was reported
PAIR_FIELDS: Final = 5
P_DEVICE: Final = 0
P_ANTENNA: Final = 1
PAIR_INT_FIELDS: Final = 2

# out_f / out_i columns
O_T: Final = 0
O_SINCE: Final = 1
O_RSSI: Final = 2
OUT_FLOAT_FIELDS: Final = 3
O_KIND: Final = 0
O_SUBJECT: Final = 1
O_ZONE: Final = 2
O_DEVICE: Final = 3
O_ANTENNA: Final = 4
OUT_INT_FIELDS: Final = 5

# params vector (EngineParams.as_array)
K_DEDUP_S: Final = 0
K_TAU_S: Final = 1
K_ENTER_READS: Final = 2
K_HYSTERESIS: Final = 3
K_LN_INV_DELTA: Final = 4
K_PRIOR_READS: Final = 5
K_PRIOR_RATE_HZ: Final = 6
K_MIN_WINDOW_S: Final = 7
K_MAX_WINDOW_S: Final = 8
K_RSSI_REF_DBM: Final = 9
K_RSSI_SCALE_DB: Final = 10
K_TAIL_U: Final = 11
K_PRIOR_GAPS: Final = 12
K_PRIOR_EXCEED: Final = 13
K_PRIOR_EXCESS: Final = 14
K_POOL_FORGET: Final = 15
K_REJOIN_S: Final = 16
K_LONG_READS: Final = 17
K_ENTER_SCORE: Final = 18
PARAM_FIELDS: Final = 19

# Forgetting (gateway.stages.presence.PresenceStage): a subject in no zone and not read anywhere for
# ``forget_after_s`` has its row reset and its id released for reuse, so the state is as large as
# the subjects seen in that horizon, not all ever seen. The sweep runs this many times per
# ``forget_after_s``, in Python between kernel calls (the twin sweeps on the same schedule).
FORGET_SWEEPS: Final = 4

# transition kinds, as gateway.stages.transitions.TransitionKind
ENTER: Final = 0
DWELL: Final = 1
EXIT: Final = 2
