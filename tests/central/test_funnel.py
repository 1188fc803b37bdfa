"""The funnel: stages per store, zone and hour, from stored events; a simulated day's funnel
against the one its ground truth gives."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.store_day import DWELL_S, shop, simulate, true_visits
from central.funnel import Visit, funnel, visits_from
from central.records import classify, event_rows
from central.report import write
from central.store import Store, StoredEvent, open_store
from demo.scoring import TrueMove, TrueVisit, score, score_attribution, visits_from_events

T0 = datetime(2026, 11, 23, 10, tzinfo=UTC).timestamp()


def stored(kind: str, t: float, who: str | None, **extra: object) -> StoredEvent:
    """An event of ``who`` (a customer) in shelf-a, or of an item when ``who`` is None."""
    payload = json.dumps({"type": kind, **extra})
    subject_kind = "customer" if who is not None else "item"
    return StoredEvent("store-042", "gw-1", 0, kind, t, "shelf-a", subject_kind, who, payload)


def test_stages_count_distinct_customers_of_the_hour_their_visit_began() -> None:
    events = [
        # alice: enters, dwells, is shown an offer, picks up
        stored("presence.enter", T0 + 10, "alice"),
        stored("presence.dwell", T0 + 15, "alice"),
        stored("action.executed", T0 + 15.2, "alice", ok=True),
        stored("item.pickup", T0 + 20, None, customer={"id": "alice"}),
        stored("presence.exit", T0 + 30, "alice"),
        # bob: enters and dwells; his offer failed; picks up nothing
        stored("presence.enter", T0 + 12, "bob"),
        stored("presence.dwell", T0 + 17, "bob"),
        stored("action.executed", T0 + 17.2, "bob", ok=False),
        stored("presence.exit", T0 + 25, "bob"),
        # carol passes by twice in the hour; dave at 11:00 belongs to the next hour
        stored("presence.enter", T0 + 100, "carol"),
        stored("presence.exit", T0 + 102, "carol"),
        stored("presence.enter", T0 + 200, "carol"),
        stored("presence.exit", T0 + 203, "carol"),
        stored("presence.enter", T0 + 3600, "dave"),
        stored("presence.exit", T0 + 3640, "dave"),
        # a pickup while nobody was there is nobody's
        stored("item.pickup", T0 + 500, None, customer={"id": "erin"}),
    ]
    found = funnel(visits_from(events))
    first, second = found.rows
    assert (first.visits, first.passed, first.dwelled, first.offered, first.picked_up) == (
        4,
        3,
        2,
        1,
        1,
    )
    assert first.picked_up_offered == 1
    assert first.conversions == {
        "dwell_rate": 2 / 3, "offer_rate": 0.5, "pickup_rate": 0.5, "offer_pickup_rate": 1.0,
    }  # fmt: skip
    assert first.hour == datetime(2026, 11, 23, 10, tzinfo=UTC)
    assert (second.passed, second.dwelled, second.conversions["offer_rate"]) == (1, 0, None)
    assert found.dwell_histograms["store-042", "shelf-a"] == [2, 0, 1, 1, 1, 0, 0, 0]


def test_an_exit_without_its_enter_starts_at_its_since() -> None:
    since = datetime.fromtimestamp(T0 - 50, UTC).isoformat().replace("+00:00", "Z")
    (visit,) = visits_from([stored("presence.exit", T0 + 10, "alice", since=since)])
    assert (visit.start, visit.end) == (T0 - 50, T0 + 10)


def test_the_report_writes_csv_and_one_self_contained_page(tmp_path: Path) -> None:
    visits = [Visit("store-042", "shelf-a", "alice", T0, T0 + 12, dwelled=True, picked=True),
              Visit("store-042", "shelf-a", "bob", T0 + 5, T0 + 7),
              Visit("store-042", "entrance", "bob", T0 - 10, T0 + 4)]  # fmt: skip
    paths = write(funnel(visits), tmp_path / "out", datetime.fromtimestamp(T0, UTC).date())
    funnel_csv = paths[0].read_text().splitlines()
    assert funnel_csv[0].startswith("store,zone,hour,visits,passed,dwelled,offered,picked_up")
    assert "store-042,shelf-a,2026-11-23T10:00Z,2,2,1,0,1,0,0.5000,0.0000,1.0000," in funnel_csv
    assert "store-042,shelf-a,10-20 s,1" in paths[1].read_text()
    page = paths[2].read_text()
    assert page.count("<svg") == 5  # two funnels, visits per hour, two dwell histograms
    assert "<script" not in page
    assert "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")


def land(events: list[dict[str, object]], store: Store) -> None:
    """As the consumer stores them, through the same checks."""
    rows = []
    for e in events:
        topic = f"silentcommerce/v1/{e['store']}/{e['gateway']}/event/{e['type']}"  # dotted form
        rows += event_rows(classify(topic, "silentcommerce/v1"), json.dumps(e).encode())
    store.insert(rows, 0.0)


def test_a_simulated_day_has_the_funnel_of_its_ground_truth_within_the_measured_error(
    tmp_path: Path,
) -> None:
    day = simulate(shop(seed=3, hours=5.0), seed=3)
    store = open_store(f"sqlite:///{tmp_path / 'central.db'}")
    land(day.events, store)
    start = datetime.fromtimestamp(day.wall_origin, UTC)
    detected = funnel(visits_from(store.events_between(start, start + timedelta(days=1)))).totals()
    truth = true_visits(day)
    expected = funnel(truth).totals()
    store.close()

    # The presence engine's error on this very day, customers' visits only ...
    customers = {v.customer for v in truth}
    presence = score(
        [TrueVisit(v.customer, v.zone, v.start, v.end) for v in truth],
        [v for v in visits_from_events(day.events) if v.subject in customers],
    )
    visit_error = 1.0 - min(presence.precision, presence.recall)
    # ... visits whose true length is within the dwell error of the zone's dwell_s ...
    near = presence.dwell_error_p95
    borderline = {
        zone: sum(abs(v.end - v.start - DWELL_S[zone]) <= near for v in truth if v.zone == zone)
        for zone in DWELL_S
    }
    # ... and the attribution's, of the pickups.
    moves = [TrueMove(day.wall_origin + m.t, m.kind, m.item, day.pseudonym(m.customer))
             for m in day.scenario.moves if m.kind == "pickup"]  # fmt: skip
    hands = score_attribution(moves, day.events)
    pickup_error = 1.0 - hands.correct / hands.true_moves
    print(f"\n{presence.summary()}\n{hands.summary()}")

    assert set(detected) == set(expected)
    for key, want in expected.items():
        got = detected[key]
        print(
            f"{key[1]:>9}: passed {got.passed}/{want.passed} dwelled {got.dwelled}/"
            f"{want.dwelled} picked up {got.picked_up}/{want.picked_up}"
        )
        assert abs(got.passed - want.passed) <= math.ceil(visit_error * want.passed) + 1
        dwell_slack = math.ceil(visit_error * want.dwelled) + borderline[key[1]] + 1
        assert abs(got.dwelled - want.dwelled) <= dwell_slack
        assert abs(got.picked_up - want.picked_up) <= math.ceil(pickup_error * want.picked_up) + 1
    assert sum(w.picked_up for w in expected.values()) > 50  # the stage is exercised


def test_silentgate_central_report_writes_the_day_of_the_newest_event(
    tmp_path: Path, capsys: object
) -> None:
    from gateway.cli import main  # noqa: PLC0415

    day = simulate(shop(seed=5, hours=0.5), seed=5)
    url = f"sqlite:///{tmp_path / 'central.db'}"
    store = open_store(url)
    land(day.events, store)
    store.close()
    assert main(["central", "report", "--db", url, "--out", str(tmp_path / "out")]) == 0
    rows = (tmp_path / "out" / "funnel.csv").read_text().splitlines()
    assert len(rows) > 3
    assert rows[1].startswith("store-042,entrance,2026-11-19T09:00Z,")
    assert (
        main(
            ["central", "report", "--db", url, "--out", str(tmp_path / "x"), "--day", "2020-01-01"]
        )
        == 0
    )
    assert "No customer visits" in (tmp_path / "x" / "funnel.html").read_text()
