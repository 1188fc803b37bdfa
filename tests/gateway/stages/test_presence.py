"""PresenceStage on small hand-built batches: time is an argument, so dwell tests run instantly."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gateway.reads.batch import ReadBatch
from gateway.stages.kernels.presence_kernel import feed
from gateway.stages.presence import EngineParams, PresenceStage, ZoneParams
from gateway.stages.transitions import Transition, TransitionKind

pytestmark = pytest.mark.kernels

ENTER, DWELL, EXIT = TransitionKind.ENTER, TransitionKind.DWELL, TransitionKind.EXIT
ZONES = [ZoneParams("entrance", dwell_s=3.0), ZoneParams("shelf-a", dwell_s=5.0)]


def reads(*rows: tuple[float, int, int, float]) -> ReadBatch:
    """(t, subject, zone, rssi) rows; device 0, antenna = zone + 1."""
    t, s, z, r = zip(*rows, strict=True) if rows else ((), (), (), ())
    return ReadBatch.from_columns(
        list(t), list(s), list(z), list(r), [0] * len(t), [zz + 1 for zz in z]
    )


def steady(subject: int, zone: int, t0: float, t1: float, hz: float = 10.0, rssi: float = -50.0):
    n = round((t1 - t0) * hz)
    return [(t0 + i / hz, subject, zone, rssi) for i in range(n)]


def kinds(transitions: list[Transition]) -> list[tuple[TransitionKind, int, int]]:
    return [(tr.kind, tr.subject, tr.zone) for tr in transitions]


@pytest.fixture
def stage() -> PresenceStage:
    return PresenceStage(ZONES)


def test_a_single_read_is_not_a_visit(stage: PresenceStage) -> None:
    assert stage.feed(reads((1.0, 0, 1, -70.0)), 1.0) == []
    assert stage.next_deadline() is None
    assert stage.feed(ReadBatch.empty(), 100.0) == []


def test_enter_dates_from_the_first_read_and_reports_the_strongest(stage: PresenceStage) -> None:
    out = stage.feed(reads((1.0, 0, 1, -70.0), (1.1, 0, 1, -52.5), (1.2, 0, 1, -60.0)), 1.2)
    assert kinds(out) == [(ENTER, 0, 1)]
    (enter,) = out
    assert (enter.t, enter.since, enter.rssi) == (1.0, 1.0, -52.5)
    assert (enter.device, enter.antenna) == (0, 2)


def test_dwell_then_exit_from_time_passing_alone(stage: PresenceStage) -> None:
    assert kinds(stage.feed(reads(*steady(0, 0, 10.0, 12.0)), 12.0)) == [(ENTER, 0, 0)]
    assert stage.feed(reads(*steady(0, 0, 12.0, 12.9)), 12.9) == []
    (dwell,) = stage.feed(reads(*steady(0, 0, 12.9, 14.0)), 14.0)
    assert (dwell.kind, dwell.t, dwell.since) == (DWELL, 13.0, 10.0)
    deadline = stage.next_deadline()
    assert deadline is not None
    assert deadline > 13.9
    assert stage.feed(ReadBatch.empty(), math.nextafter(deadline, 0.0)) == []
    (exit_,) = stage.feed(ReadBatch.empty(), deadline)
    assert exit_.kind == EXIT
    assert exit_.t == pytest.approx(13.9)
    assert exit_.since == 10.0
    assert stage.next_deadline() is None


def test_exit_latency_is_bounded_by_the_window(stage: PresenceStage) -> None:
    stage.feed(reads(*steady(0, 0, 0.0, 10.0)), 10.0)
    deadline = stage.next_deadline()
    assert deadline is not None
    assert 9.9 + stage.params.min_window_s <= deadline <= 9.9 + stage.params.max_window_s


def test_a_gap_shorter_than_the_window_does_not_split_the_visit(stage: PresenceStage) -> None:
    first = stage.feed(reads(*steady(0, 1, 0.0, 5.0)), 5.0)
    gap = stage.feed(ReadBatch.empty(), 5.5)
    second = stage.feed(reads(*steady(0, 1, 5.6, 6.0)), 6.0)
    assert kinds(first + gap + second) == [(ENTER, 0, 1), (DWELL, 0, 1)]


def test_a_long_silence_splits_the_visit(stage: PresenceStage) -> None:
    stage.feed(reads(*steady(0, 1, 0.0, 2.0)), 2.0)
    out = stage.feed(reads(*steady(0, 1, 10.0, 10.5)), 10.5)
    assert kinds(out) == [(EXIT, 0, 1), (ENTER, 0, 1)]
    assert out[1].since == 10.0


def test_weak_bleed_does_not_move_the_subject(stage: PresenceStage) -> None:
    home = steady(0, 0, 0.0, 4.0, rssi=-50.0)
    bleed = steady(0, 1, 0.05, 4.0, hz=3.0, rssi=-68.0)
    out = stage.feed(reads(*sorted(home + bleed)), 4.0)
    assert kinds(out) == [(ENTER, 0, 0), (DWELL, 0, 0)]


def test_a_move_exits_the_old_zone_before_entering_the_new(stage: PresenceStage) -> None:
    before = steady(0, 0, 0.0, 2.0, rssi=-50.0)
    after = steady(0, 1, 2.0, 3.0, rssi=-50.0)
    out = stage.feed(reads(*before, *after), 3.0)
    assert kinds(out) == [(ENTER, 0, 0), (EXIT, 0, 0), (ENTER, 0, 1)]
    assert out[1].t == pytest.approx(1.9)
    assert out[2].since == pytest.approx(2.0)
    assert out[2].t - 2.0 < 0.5  # the move is seen from reads, not from a timeout


def test_subjects_are_independent_and_ids_can_jump(stage: PresenceStage) -> None:
    rows = sorted(steady(3, 0, 0.0, 1.0) + steady(5000, 1, 0.0, 1.0))
    out = stage.feed(reads(*rows), 1.0)
    assert sorted(kinds(out)) == [(ENTER, 3, 0), (ENTER, 5000, 1)]
    assert stage.present() == {3: 0, 5000: 1}


def test_flush_invents_nothing(stage: PresenceStage) -> None:
    stage.feed(reads(*steady(0, 0, 0.0, 1.0)), 1.0)
    assert stage.flush(1.0) == []
    assert stage.present() == {0: 0}


def test_dedup_merges_reads_closer_than_the_dedup_interval() -> None:
    stage = PresenceStage(ZONES, EngineParams(dedup_s=0.05))
    out = stage.feed(reads((1.0, 0, 0, -60.0), (1.01, 0, 0, -55.0), (1.02, 0, 0, -60.0)), 1.1)
    assert out == []  # three reads, one counted: not enough to enter


def test_a_zone_outside_the_table_is_refused(stage: PresenceStage) -> None:
    with pytest.raises(ValueError, match="zone"):
        stage.feed(reads((1.0, 0, 2, -60.0)), 1.0)


def test_missing_rssi_is_accepted(stage: PresenceStage) -> None:
    out = stage.feed(reads((1.0, 0, 0, math.nan), (1.2, 0, 0, math.nan)), 1.2)
    assert kinds(out) == [(ENTER, 0, 0)]
    assert math.isnan(out[0].rssi)


def test_warm_up_compiles_once_for_the_types_feed_uses(stage: PresenceStage) -> None:
    stage.warm_up()
    if not hasattr(feed, "signatures"):
        pytest.skip("NUMBA_DISABLE_JIT=1: nothing is compiled")
    before = list(feed.signatures)
    stage.feed(reads(*steady(7, 1, 0.0, 1.0)), np.float64(1.0))  # type: ignore[arg-type]
    odd = reads(*steady(8, 0, 1.0, 2.0))
    strided = ReadBatch(
        t=np.repeat(odd.t, 2)[::2], subject=odd.subject.astype(np.int64), zone=odd.zone,
        rssi=odd.rssi.astype(np.float64), device=odd.device, antenna=odd.antenna,
    )  # type: ignore[arg-type]  # fmt: skip
    assert kinds(stage.feed(strided, 2.0)) == [(ENTER, 8, 0)]
    assert list(feed.signatures) == before
    assert len(before) == 1


@pytest.mark.parametrize(
    "bad", [{"tau_s": 0.0}, {"delta": 1.0}, {"min_window_s": 3.0, "max_window_s": 2.0}]
)
def test_engine_params_refuse_what_the_kernel_would_divide_by(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="EngineParams"):
        EngineParams(**bad)  # type: ignore[arg-type]


def test_bleed_keeps_a_visit_alive_through_a_long_miss_burst(stage: PresenceStage) -> None:
    home = steady(0, 0, 0.0, 4.0, rssi=-50.0) + steady(0, 0, 6.5, 8.0, rssi=-50.0)
    bleed = steady(0, 1, 0.05, 8.0, hz=3.0, rssi=-68.0)  # a neighbour hears it faintly
    assert kinds(stage.feed(reads(*home), 8.0)) == [
        (ENTER, 0, 0), (DWELL, 0, 0), (EXIT, 0, 0), (ENTER, 0, 0)
    ]  # fmt: skip
    again = PresenceStage(ZONES)
    out = again.feed(reads(*sorted(home + bleed)), 8.0)
    assert kinds(out) == [(ENTER, 0, 0), (DWELL, 0, 0)]
    (exit_,) = again.feed(ReadBatch.empty(), 8.0 + again.params.max_window_s)
    assert exit_.t == pytest.approx(7.9)  # the visit ends at its zone's last read


def test_growing_the_state_keeps_who_is_where(stage: PresenceStage) -> None:
    stage.feed(reads(*steady(0, 1, 0.0, 1.0)), 1.0)
    both = sorted(steady(0, 1, 1.0, 2.0) + steady(70_000, 0, 1.0, 2.0))
    assert kinds(stage.feed(reads(*both), 2.0)) == [(ENTER, 70_000, 0)]  # 0 stays in its visit
    assert stage.present() == {0: 1, 70_000: 0}
