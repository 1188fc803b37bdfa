"""How a UHF reader sees a scenario: the stream of reads its antennas would report.

Model (per docs/drivers/thingmagic.md section 6 and the SparkFun M6e Nano log in 1.12):

* A tag in an antenna's zone is read on a regular singulation rhythm, ``read_rate_hz`` per tag
  per antenna (about 25 on the Nano with the read filter off), with a random phase and jitter.
* Each read attempt may miss. Misses come in bursts, like a tag shadowed by a hand: a two-state
  Markov chain whose miss-to-miss probability is ``burst_miss`` and whose long-run miss fraction
  is ``miss_rate``. A ``burst_miss`` below ``miss_rate`` means independent misses.
* RSSI is normal around ``rssi_mean_dbm``.
* Bleed: a tag in zone Z is also read faintly (``bleed_rate_hz``, ``bleed_rssi_drop_db`` weaker)
  by the antennas of the zones listed in ``neighbours[Z]``. Bleed is what makes zone assignment
  by "any read" wrong, and what the gateway's RSSI logic must see through.

Everything is vectorised: a read stream is (visit, antenna, rate) intervals turned into numpy
arrays in a few passes, so 10^6 reads take well under a second and the accuracy benchmark can
use it offline, without ptys. The result depends only on the inputs and the generator's state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from firmware_sim.scenario import Scenario


@dataclass(frozen=True, slots=True)
class Antenna:
    device: str  # the reader's id, as in the config's [[readers]] table
    port: int  # 1-based antenna number on that reader
    zone: str


@dataclass(frozen=True, slots=True)
class TrafficModel:
    read_rate_hz: float = 25.0
    miss_rate: float = 0.0
    burst_miss: float = 0.0  # P(the next attempt misses | this one missed)
    rssi_mean_dbm: float = -52.0
    rssi_sd_db: float = 3.0
    bleed_rate_hz: float = 2.0
    bleed_rssi_drop_db: float = 12.0
    neighbours: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SimReads:
    """Parallel arrays, sorted by ``t``."""

    t: NDArray[np.float64]  # seconds from scenario start
    subject: NDArray[np.int32]  # index into Scenario.subjects
    antenna: NDArray[np.int32]  # index into the antennas passed to generate_reads
    rssi: NDArray[np.float32]  # dBm

    def __len__(self) -> int:
        return int(self.t.shape[0])


@dataclass(frozen=True, slots=True)
class _Streams:
    """One row per (visit, antenna) pair that produces reads within the window."""

    start: NDArray[np.float64]
    end: NDArray[np.float64]
    rate: NDArray[np.float64]
    rssi: NDArray[np.float64]
    subject: NDArray[np.int32]
    antenna: NDArray[np.int32]


def generate_reads(
    scenario: Scenario,
    antennas: Sequence[Antenna],
    model: TrafficModel,
    t0: float,
    t1: float,
    rng: np.random.Generator,
) -> SimReads:
    """The reads of ``antennas`` with ``t0 <= t < t1``."""
    streams = _streams(scenario, antennas, model, t0, t1)
    t, row = _attempts(streams, rng)
    hit = _hit_mask(len(t), model.miss_rate, model.burst_miss, rng)
    t, row = t[hit], row[hit]
    rssi = rng.normal(streams.rssi[row], model.rssi_sd_db).astype(np.float32)
    order = np.argsort(t, kind="stable")
    return SimReads(t[order], streams.subject[row][order], streams.antenna[row][order], rssi[order])


def _streams(
    scenario: Scenario, antennas: Sequence[Antenna], model: TrafficModel, t0: float, t1: float
) -> _Streams:
    # zone -> [(antenna index, rate, mean rssi)] for every antenna that hears a tag in that zone
    hears: dict[str, list[tuple[int, float, float]]] = {z: [] for z in scenario.zones}
    bleed_rssi = model.rssi_mean_dbm - model.bleed_rssi_drop_db
    for a, antenna in enumerate(antennas):
        hears.setdefault(antenna.zone, []).append((a, model.read_rate_hz, model.rssi_mean_dbm))
        for zone, near in model.neighbours.items():
            if antenna.zone in near and zone != antenna.zone:
                hears.setdefault(zone, []).append((a, model.bleed_rate_hz, bleed_rssi))
    # The same table flattened per scenario zone (index -1, a zone the scenario does not list,
    # is heard by nobody): row j of zone z is hearer first[z] + j.
    per_zone = [[h for h in hears.get(z, ()) if h[1] > 0] for z in scenario.zones] + [[]]
    count = np.array([len(h) for h in per_zone], np.int64)
    first = np.cumsum(count) - count
    flat = [h for hs in per_zone for h in hs]
    h_antenna = np.array([h[0] for h in flat], np.int32)
    h_rate = np.array([h[1] for h in flat], np.float64)
    h_rssi = np.array([h[2] for h in flat], np.float64)
    cols = scenario.columns()
    live = cols.overlapping(t0, t1)
    live = live[cols.uhf[live]]
    zone_of = cols.zone[live]  # -1 indexes the empty list at the end
    n = count[zone_of]
    visit = np.repeat(live, n)
    k = np.arange(len(visit)) - np.repeat(np.cumsum(n) - n, n)
    row = np.repeat(first[zone_of], n) + k  # one per (visit, hearer), in visit order
    return _Streams(
        start=np.maximum(cols.start[visit], t0),
        end=np.minimum(cols.end[visit], t1),
        rate=h_rate[row],
        rssi=h_rssi[row],
        subject=cols.subject[visit],
        antenna=h_antenna[row],
    )


def _attempts(
    s: _Streams, rng: np.random.Generator
) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
    """Read attempts on each stream's rhythm: times, and the stream row of each, in row order.

    Attempt k of a stream is at ``start + (phase + k) / rate`` plus jitter, phase uniform in
    [0, 1), so a stream of length L yields L * rate attempts on average, with no edge bias.
    """
    phase = rng.random(len(s.start))
    count = np.maximum(np.ceil((s.end - s.start) * s.rate - phase), 0).astype(np.int64)
    row = np.repeat(np.arange(len(count)), count)
    first = np.cumsum(count) - count
    k = np.arange(len(row)) - np.repeat(first, count)
    rate = s.rate[row]
    # Jitter below half a period keeps a stream's attempts in order, which the miss chain needs.
    jitter = rng.uniform(-0.4, 0.4, len(row))
    t = s.start[row] + (phase[row] + k + jitter) / rate
    t = np.clip(t, s.start[row], np.nextafter(s.end[row], -np.inf))
    return t, row


def _hit_mask(
    n: int, miss_rate: float, burst_miss: float, rng: np.random.Generator
) -> NDArray[np.bool_]:
    """A two-state Markov chain over ``n`` consecutive attempts, built from alternating runs."""
    if miss_rate <= 0.0:
        return np.ones(n, np.bool_)
    if miss_rate >= 1.0:
        return np.zeros(n, np.bool_)
    stay_miss = min(max(burst_miss, miss_rate), 1.0 - 1e-9)
    # Stationary miss fraction m = a / (a + 1 - stay_miss), solved for a = P(miss | hit).
    # Clamped to a probability: near miss_rate 1 the stationary solution overshoots it.
    enter_miss = min(max(miss_rate * (1.0 - stay_miss) / (1.0 - miss_rate), 1e-12), 1.0)
    pieces: list[NDArray[np.bool_]] = [np.ones(0, np.bool_)]
    total = 0
    missing = bool(rng.random() < miss_rate)
    mean_pair = 1.0 / enter_miss + 1.0 / (1.0 - stay_miss)
    leave = {True: 1.0 - stay_miss, False: enter_miss}  # P(run ends) for a miss / hit run
    while total < n:
        left = n - total
        pairs = int(left / mean_pair) + 16
        runs = np.empty(2 * pairs, np.int64)
        runs[0::2] = rng.geometric(leave[missing], pairs)
        runs[1::2] = rng.geometric(leave[not missing], pairs)
        # Cut at ``left`` attempts: a near-certain state would otherwise draw runs of 10^9.
        runs = np.minimum(runs, left)
        cut = int(np.searchsorted(np.cumsum(runs), left)) + 1
        values = np.tile(np.array([missing, not missing]), pairs)[:cut]
        pieces.append(np.repeat(~values, runs[:cut]))  # the mask holds hits, not misses
        total += int(runs[:cut].sum())
    return np.concatenate(pieces)[:n]
