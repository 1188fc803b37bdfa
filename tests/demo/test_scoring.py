"""The scorer: matching, the counts behind precision/recall, latencies, and event parsing."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from demo.scoring import (
    DetectedVisit,
    TrueMove,
    TrueVisit,
    score,
    score_attribution,
    visits_from_events,
)
from gateway.events.model import format_ts, parse_ts

T0 = 1_800_000_000.0  # a wall-clock second, so ISO timestamps round-trip at ms precision


def seen(v: TrueVisit, enter_lag: float = 0.2, exit_lag: float = 1.0) -> DetectedVisit:
    return DetectedVisit(v.subject, v.zone, v.start, v.end, v.start + enter_lag, v.end + exit_lag)


def test_perfect_detection() -> None:
    truth = [TrueVisit("a", "z1", 0.0, 10.0), TrueVisit("a", "z2", 12.0, 20.0)]
    s = score(truth, [seen(v) for v in truth])
    assert (s.precision, s.recall, s.f1) == (1.0, 1.0, 1.0)
    assert s.enter_latency_p50 == pytest.approx(0.2)
    assert s.exit_latency_p95 == pytest.approx(1.0)
    assert s.dwell_error_p95 == 0.0


def test_a_summary_without_visits_shows_dashes_not_nan() -> None:
    # A Ctrl-C before the first customer left: nothing to take a latency from.
    text = score([TrueVisit("a", "z1", 0.0, 10.0)], []).summary()
    assert "nan" not in text
    assert text.endswith("latency (s, p50/p95): enter -/-  exit -/-  dwell error -/-")


def test_a_split_visit_costs_precision_and_dwell() -> None:
    truth = [TrueVisit("a", "z1", 0.0, 10.0)]
    halves = [
        DetectedVisit("a", "z1", 0.0, 6.0, 0.1, 7.0),
        DetectedVisit("a", "z1", 7.0, 10.0, 7.1, 11.0),
    ]
    s = score(truth, halves)
    assert (s.matched, s.recall, s.precision) == (1, 1.0, 0.5)
    assert s.dwell_error_p50 == pytest.approx(4.0)


def test_wrong_zone_or_subject_never_matches() -> None:
    truth = [TrueVisit("a", "z1", 0.0, 10.0)]
    wrong = [DetectedVisit("a", "z2", 0.0, 10.0, 0.0, 10.0), DetectedVisit("b", "z1", 0, 10, 0, 10)]
    s = score(truth, wrong)
    assert (s.matched, s.f1) == (0, 0.0)
    assert math.isnan(s.exit_latency_p50)


def test_open_visits_match_but_have_no_exit_latency() -> None:
    truth = [TrueVisit("a", "z1", 5.0, 60.0)]
    s = score(truth, [DetectedVisit("a", "z1", 5.1, None, 5.3, None)])
    assert s.f1 == 1.0
    assert math.isnan(s.exit_latency_p50)
    assert s.enter_latency_p50 == pytest.approx(0.3)


def test_summary_and_dict() -> None:
    truth = [TrueVisit("a", "z1", 0.0, 10.0)]
    s = score(truth, [seen(truth[0])])
    assert "F1 1.000" in s.summary()
    assert s.as_dict()["matched"] == 1


def event(kind: str, subject: str, zone: str, ts: float, since: float | None = None) -> dict:
    e: dict[str, object] = {"type": kind, "ts": format_ts(ts), "zone": zone}
    e["subject"] = {"kind": "item", "id": subject}
    if since is not None:
        e["since"], e["dwell_s"] = format_ts(since), ts - since
    return e


def test_visits_from_events() -> None:
    events = [
        event("presence.enter", "E1", "shelf-a", T0 + 1.0),
        event("presence.dwell", "E1", "shelf-a", T0 + 6.0, since=T0 + 1.0),
        {"type": "device.status", "ts": format_ts(T0 + 7.0), "device": "door", "state": "ok"},
        event("presence.exit", "E1", "shelf-a", T0 + 9.5, since=T0 + 1.0),
        event("presence.exit", "E2", "shelf-b", T0 + 4.0, since=T0 + 2.0),  # enter was missed
        event("presence.enter", "E3", "entrance", T0 + 8.0),
    ]
    received = [T0 + 1.3, T0 + 6.1, T0 + 7.0, T0 + 10.6, T0 + 5.0, T0 + 8.2]
    visits = visits_from_events(events, received)
    assert visits == [
        DetectedVisit("E1", "shelf-a", T0 + 1.0, T0 + 9.5, T0 + 1.3, T0 + 10.6),
        DetectedVisit("E2", "shelf-b", T0 + 2.0, T0 + 4.0, None, T0 + 5.0),
        DetectedVisit("E3", "entrance", T0 + 8.0, None, T0 + 8.2, None),
    ]


VISITS = st.lists(
    st.builds(
        lambda s, z, a, d: TrueVisit(s, z, a, a + d),
        st.sampled_from("abc"), st.sampled_from(["z1", "z2"]),
        st.floats(0, 1000), st.floats(0.5, 100),
    ),
    max_size=20,
)  # fmt: skip


@given(VISITS)
def test_truth_scores_perfectly_against_itself(truth: list[TrueVisit]) -> None:
    s = score(truth, [seen(v, 0.0, 0.0) for v in truth])
    assert s.matched == len(truth)
    assert s.f1 == 1.0


@given(VISITS, VISITS)
def test_scores_stay_in_range_and_extra_detections_never_help_precision(
    truth: list[TrueVisit], noise: list[TrueVisit]
) -> None:
    detected = [seen(v) for v in truth[: len(truth) // 2]]
    s = score(truth, detected)
    assert 0.0 <= s.f1 <= 1.0
    assert s.matched <= min(len(truth), len(detected))
    worse = score(truth, detected + [seen(v) for v in noise])
    assert worse.precision <= s.precision or not detected


# -- who picked it up ---------------------------------------------------------------------------


def _item_event(kind: str, item: str, ts: str, customer: str | None) -> dict[str, object]:
    event: dict[str, object] = {"type": f"item.{kind}", "ts": ts, "subject": {"id": item}}
    if customer is not None:
        event["customer"] = {"id": customer, "candidates": 1, "basis": "only"}
    return event


def test_attribution_pairs_moves_by_item_kind_and_time_and_checks_the_customer() -> None:
    t0 = parse_ts("2026-11-23T10:00:00.000Z")
    truth = [
        TrueMove(t0, "pickup", "ITEM-1", "alice"),
        TrueMove(t0 + 20, "putback", "ITEM-1", "alice"),
        TrueMove(t0 + 30, "pickup", "ITEM-2", "bob"),
        TrueMove(t0 + 60, "pickup", "ITEM-3", "carol"),
    ]
    events = [
        _item_event("pickup", "ITEM-1", "2026-11-23T10:00:01.500Z", "alice"),
        _item_event("putback", "ITEM-1", "2026-11-23T10:00:21.000Z", "bob"),  # wrong person
        _item_event("pickup", "ITEM-2", "2026-11-23T10:00:31.000Z", None),  # nobody named
        _item_event("pickup", "ITEM-3", "2026-11-23T10:01:30.000Z", "carol"),  # 30 s late
        {"type": "presence.enter", "ts": "2026-11-23T10:00:00.000Z"},
    ]
    found = score_attribution(truth, events)
    assert (found.true_moves, found.detected, found.matched, found.named, found.correct) == (
        4, 4, 3, 2, 1,
    )  # fmt: skip
    assert found.accuracy == 1 / 3
    assert "right customer 1 of 3" in found.summary()


def test_an_attribution_with_no_matched_move_shows_a_dash_not_nan() -> None:
    summary = score_attribution([], []).summary()
    assert "0 of 0 (-)" in summary
    assert "nan" not in summary
