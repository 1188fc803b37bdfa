from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_sim.epc import Sgtin, customer_epc, gs1_check_digit, is_uhf_epc
from firmware_sim.scenario import CARD_TURN_S, MIN_VISIT_S, Behaviour, Scenario, Subject, Visit

ZONES = ("entrance", "shelf-a", "shelf-b")


def make(seed: int = 7, **kw: object) -> Scenario:
    args: dict[str, object] = {
        "seed": seed,
        "duration": 300.0,
        "zones": ZONES,
        "customers": 12,
        "items": 20,
    }
    args.update(kw)
    return Scenario.generate(**args)  # type: ignore[arg-type]


def test_gs1_tag_data_standard_example() -> None:
    # GS1 EPC Tag Data Standard, SGTIN-96 worked example:
    # urn:epc:tag:sgtin-96:3.0614141.812345.6789 = 30 74 25 7B F7 19 4E 40 00 00 1A 85
    sgtin = Sgtin(3, "0614141", "812345", 6789)
    assert sgtin.to_hex() == "3074257BF7194E4000001A85"
    assert Sgtin.from_hex("3074257BF7194E4000001A85") == sgtin
    assert sgtin.gtin14 == "80614141123458"


@given(
    partition=st.integers(0, 6),
    filter_value=st.integers(0, 7),
    serial=st.integers(0, (1 << 38) - 1),
    data=st.data(),
)
def test_sgtin_round_trip(
    partition: int, filter_value: int, serial: int, data: st.DataObject
) -> None:
    cp_digits = 12 - partition
    company = data.draw(st.text("0123456789", min_size=cp_digits, max_size=cp_digits))
    item = data.draw(st.text("0123456789", min_size=13 - cp_digits, max_size=13 - cp_digits))
    sgtin = Sgtin(filter_value, company, item, serial)
    epc = sgtin.to_hex()
    assert len(epc) == 24
    assert epc.startswith("30")
    assert Sgtin.from_hex(epc) == sgtin
    gtin = sgtin.gtin14
    assert len(gtin) == 14
    assert gs1_check_digit(gtin[:13]) == int(gtin[13])


def test_customer_epcs_carry_the_prefix() -> None:
    assert customer_epc("C0FFEE", 0x2A) == "C0FFEE00000000000000002A"
    scenario = make(customer_prefix="ABCD")
    customers = [s for s in scenario.subjects if s.kind == "customer"]
    assert len(customers) == 12
    assert all(s.raw_id.startswith("ABCD") and len(s.raw_id) == 24 for s in customers)


def test_item_epcs_are_valid_sgtin96() -> None:
    items = [s for s in make().subjects if s.kind == "item"]
    assert len(items) == 20
    assert len({s.raw_id for s in items}) == 20
    for item in items:
        sgtin = Sgtin.from_hex(item.raw_id)
        assert sgtin.to_hex() == item.raw_id
        assert gs1_check_digit(sgtin.gtin14[:13]) == int(sgtin.gtin14[13])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_subject_is_in_one_zone_at_a_time(seed: int) -> None:
    scenario = make(seed)
    by_subject = sorted(scenario.visits, key=lambda v: (v.subject, v.start))
    for subject, visits in itertools.groupby(by_subject, key=lambda v: v.subject):
        timeline = list(visits)
        for a, b in itertools.pairwise(timeline):
            assert a.end <= b.start, subject
        assert all(0 <= v.start < v.end <= scenario.duration for v in timeline)
        assert all(v.zone in scenario.zones for v in timeline)


def test_customers_enter_then_wander_and_items_stay_on_shelves() -> None:
    scenario = make(behaviour=Behaviour(visits_per_customer=(3, 3)))
    kinds = {s.raw_id: s.kind for s in scenario.subjects}
    firsts: dict[str, Visit] = {}
    for v in scenario.visits:
        firsts.setdefault(v.subject, v)
        if kinds[v.subject] == "item":
            assert v.zone != "entrance"
    assert all(v.zone == "entrance" for s, v in firsts.items() if kinds[s] == "customer")
    customer_visits = [v for v in scenario.visits if kinds[v.subject] == "customer"]
    assert {v.zone for v in customer_visits} == set(ZONES)
    # Items start on the shelf; some get picked up before the end.
    item_visits = [v for v in scenario.visits if kinds[v.subject] == "item"]
    assert sum(v.end < scenario.duration for v in item_visits) > 0


def test_present_at_matches_visits() -> None:
    scenario = make()
    for t in (0.0, 50.0, 150.5, 299.0):
        present = scenario.present_at(t)
        expected = {v.subject: v.zone for v in scenario.visits if v.start <= t < v.end}
        assert present == expected
    assert len(scenario.present_at(0.0)) == 20  # every item on its shelf at the start


def test_same_seed_same_scenario_other_seed_other() -> None:
    assert make(5) == make(5)
    assert make(5) != make(6)


def test_json_round_trip() -> None:
    scenario = make()
    again = Scenario.from_json(scenario.to_json())
    assert again == scenario
    assert again.subjects[0] == Subject(scenario.subjects[0].raw_id, "customer")


def test_json_rejects_unknown_version() -> None:
    with pytest.raises(ValueError, match="version"):
        Scenario.from_json('{"version": 99}')


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_card_customers_take_turns_at_the_card_reader(seed: int) -> None:
    # A 125 kHz reader reads one card in its field: two cards there at once could not be seen.
    scenario = make(seed, card_customers=6)
    cards = [v for v in scenario.visits if not is_uhf_epc(v.subject)]
    assert len({v.subject for v in cards}) >= 4
    assert all(v.zone == "entrance" and v.end - v.start >= MIN_VISIT_S for v in cards)
    for a, b in itertools.pairwise(sorted(cards, key=lambda v: v.start)):
        assert b.start >= a.end + CARD_TURN_S

    # Taking turns moves card visits only: the UHF customers (drawn first) are untouched.
    def uhf_customers(s: Scenario) -> list[Visit]:
        kinds = {x.raw_id: x.kind for x in s.subjects}
        return [v for v in s.visits if is_uhf_epc(v.subject) and kinds[v.subject] == "customer"]

    assert uhf_customers(scenario) == uhf_customers(make(seed))


def test_visit_columns_follow_the_visits() -> None:
    scenario = make(4, card_customers=3)
    cols = scenario.columns()
    assert cols is scenario.columns()  # built once
    for i, v in enumerate(scenario.visits):
        assert (cols.start[i], cols.end[i]) == (v.start, v.end)
        assert scenario.subjects[cols.subject[i]].raw_id == v.subject
        assert scenario.zones[cols.zone[i]] == v.zone
        assert bool(cols.uhf[i]) == is_uhf_epc(v.subject)
    assert cols.overlapping(100.0, 101.0).tolist() == [
        i for i, v in enumerate(scenario.visits) if v.start < 101.0 and v.end > 100.0
    ]


# -- customers' pickups -------------------------------------------------------------------------


def _picking_shop() -> Scenario:
    return Scenario.generate(
        seed=4, duration=1800.0, zones=("entrance", "shelf-a", "shelf-b"), customers=60,
        items=20, behaviour=Behaviour(pickups_per_item_per_min=0.0, pick_probability=0.6),
    )  # fmt: skip


def test_customers_pick_up_what_is_on_the_shelf_they_stand_at() -> None:
    scenario = _picking_shop()
    pickups = [m for m in scenario.moves if m.kind == "pickup"]
    putbacks = [m for m in scenario.moves if m.kind == "putback"]
    assert len(pickups) > 20
    assert 0 < len(putbacks) < len(pickups)
    for move in scenario.moves:
        stop = [v for v in scenario.visits if v.subject == move.customer and v.zone == move.zone]
        assert any(v.start < move.t < v.end for v in stop)
        stays = [v for v in scenario.visits if v.subject == move.item]
        assert all(v.zone == move.zone for v in stays)
        if move.kind == "pickup":
            assert any(v.end == move.t for v in stays)  # its stay on the shelf ends there
        else:
            assert any(v.start == move.t for v in stays)


def test_an_items_stays_never_overlap_when_customers_take_it() -> None:
    scenario = Scenario.generate(
        seed=1, duration=12 * 3600.0, zones=("entrance", "shelf-a", "shelf-b"), customers=1440,
        items=24, behaviour=Behaviour(pickups_per_item_per_min=0.0, pick_probability=0.5),
    )  # fmt: skip
    for subject in scenario.subjects:
        stays = sorted((v.start, v.end) for v in scenario.visits if v.subject == subject.raw_id)
        assert all(end - start >= MIN_VISIT_S for start, end in stays)
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(stays))


def test_a_putback_follows_its_pickup_by_the_same_customer() -> None:
    scenario = _picking_shop()
    for back in (m for m in scenario.moves if m.kind == "putback"):
        taken = [m for m in scenario.moves if m.kind == "pickup" and m.item == back.item]
        before = max((m for m in taken if m.t < back.t), key=lambda m: m.t)
        assert before.customer == back.customer


def test_moves_survive_the_json_round_trip_and_picks_leave_other_scenarios_alone() -> None:
    scenario = _picking_shop()
    assert Scenario.from_json(scenario.to_json()).moves == scenario.moves
    plain = Scenario.generate(seed=4, duration=600.0, zones=("entrance", "shelf-a"), customers=5,
                              items=4)  # fmt: skip
    assert plain.moves == ()
    assert plain == Scenario.generate(
        seed=4, duration=600.0, zones=("entrance", "shelf-a"), customers=5, items=4,
        behaviour=Behaviour(pick_probability=0.0),
    )  # fmt: skip
