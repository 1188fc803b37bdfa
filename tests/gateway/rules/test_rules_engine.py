"""The rule engine with time in the test's hand: triggers, thresholds, windows, cooldowns, rate
limits and priorities decided on stored event objects, with no output and no clock involved."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from gateway.config.rules import RuleConfig
from gateway.config.templates import Value
from gateway.events.model import (
    AnyEvent,
    DeviceStatus,
    ItemMoved,
    PresenceDwell,
    PresenceEnter,
    PresenceExit,
    ShelfWeight,
    Source,
    Subject,
    format_ts,
)
from gateway.rules.engine import Planned, RuleEngine

# Monday 2026-11-23 10:00 UTC; the engine is given UTC as the shop's zone.
MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC).timestamp()
ALICE = "a1" * 32  # pseudonyms as the event factory makes them: 64 hex digits
BOB = "b2" * 32
GTIN = "80614141123458"
_ids = itertools.count(1)


class Content:
    def __init__(self, **offers: str) -> None:
        self.zones: dict[str, dict[str, Value]] = {}
        self.offers = {who: {"text": text} for who, text in offers.items()}

    def zone(self, zone: str) -> Mapping[str, Value] | None:
        return self.zones.get(zone)

    def gtin(self, gtin: str) -> Mapping[str, Value] | None:
        return None

    def offer(self, pseudonym: str) -> Mapping[str, Value] | None:
        return self.offers.get(pseudonym)


def common(zone: str, at: float) -> dict[str, Any]:
    return {"id": f"e{next(_ids)}", "ts": format_ts(at), "store": "s", "gateway": "g", "zone": zone}


def customer(who: str) -> Subject:
    return Subject(kind="customer", id=who)


def dwell(who: str, zone: str = "shelf-a", dwell_s: float = 5.0, at: float = MONDAY_10) -> AnyEvent:
    return PresenceDwell(
        **common(zone, at), subject=customer(who), dwell_s=dwell_s, since=format_ts(at - dwell_s)
    )


def rule(rule_id: str = "r", **fields: Any) -> RuleConfig:
    fields.setdefault("trigger", {"event": "presence.dwell"})
    fields.setdefault("actions", [{"output": "disp", "do": "show", "text": "hi {zone}"}])
    return RuleConfig.model_validate({"id": rule_id, **fields})


def engine(*rules: RuleConfig, content: Content | None = None) -> RuleEngine:
    return RuleEngine(rules, content or Content(), tz=UTC)


def outputs(planned: list[Planned]) -> list[tuple[str, str, str | None]]:
    return [(p.rule, p.output, p.text) for p in planned]


def test_a_dwell_in_the_rules_zone_shows_the_rendered_text() -> None:
    e = engine(
        rule(
            trigger={"event": "presence.dwell", "zones": ["shelf-a"], "subject": "customer"},
            actions=[{"output": "disp", "do": "show", "text": "{zone}: {dwell_s:.0f} s"}],
        )
    )
    event = dwell(ALICE, dwell_s=5.4)
    planned = e.feed([event, dwell(BOB, zone="shelf-b")], now=1.0)
    assert outputs(planned) == [("r", "disp", "shelf-a: 5 s")]
    assert planned[0].trigger is event
    assert planned[0].at == 1.0


def test_enter_events_do_not_trigger_a_dwell_rule_and_items_not_a_customer_rule() -> None:
    e = engine(rule(trigger={"event": "presence.dwell", "subject": "customer"}))
    enter = PresenceEnter(
        **common("shelf-a", MONDAY_10), subject=customer(ALICE), source=Source(device="d")
    )
    item = PresenceDwell(
        **common("shelf-a", MONDAY_10),
        subject=Subject(kind="item", id="E1", gtin=GTIN),
        dwell_s=5.0,
        since=format_ts(MONDAY_10),
    )
    assert e.feed([enter, item], now=1.0) == []


def test_min_dwell_s_on_exit_counts_the_whole_visit() -> None:
    e = engine(rule(trigger={"event": "presence.exit", "min_dwell_s": 20}, cooldown_s=0))
    short = PresenceExit(
        **common("shelf-a", MONDAY_10),
        subject=customer(ALICE),
        dwell_s=19.9,
        since=format_ts(MONDAY_10 - 19.9),
    )
    long = PresenceExit(
        **common("shelf-a", MONDAY_10),
        subject=customer(BOB),
        dwell_s=20.0,
        since=format_ts(MONDAY_10 - 20),
    )
    assert [p.trigger for p in e.feed([short, long], now=1.0)] == [long]


def test_gtin_lists_and_low_weight_select_items_and_shelves() -> None:
    on_pickup = rule(
        "pickup",
        trigger={"event": "item.pickup", "gtins": ["4006381333931"]},  # an EAN-13, padded to 14
        actions=[{"output": "disp", "do": "show", "text": "{gtin}", "min_interval_s": 0}],
    )
    low = rule(
        "low",
        trigger={"event": "shelf.weight", "weight_below_g": 500},
        actions=[{"output": "lamp", "do": "switch", "channel": 1, "duration_s": 3}],
    )
    e = engine(on_pickup, low)
    picked = ItemMoved(
        **common("shelf-a", MONDAY_10),
        type="item.pickup",
        subject=Subject(kind="item", id="E1", gtin="04006381333931"),
    )
    other = ItemMoved(
        **common("shelf-a", MONDAY_10),
        type="item.pickup",
        subject=Subject(kind="item", id="E2", gtin="00000000000017"),
    )
    heavy = ShelfWeight(**common("shelf-a", MONDAY_10), grams=500.0, delta_g=-10, sensor="s")
    light = ShelfWeight(**common("shelf-a", MONDAY_10), grams=499.9, delta_g=-10, sensor="s")
    planned = e.feed([picked, other, heavy, light], now=1.0)
    assert [(p.rule, p.trigger) for p in planned] == [("pickup", picked), ("low", light)]
    assert planned[0].text == "04006381333931"


def test_a_window_past_midnight_belongs_to_the_day_it_starts() -> None:
    e = engine(
        rule(
            trigger={"event": "presence.dwell", "between": "22:00-02:00", "days": ["sun"]},
            cooldown_s=0,
            actions=[{"output": "disp", "do": "clear", "min_interval_s": 0}],
        )
    )
    sunday = datetime(2026, 11, 22, tzinfo=UTC).timestamp()
    cases = {
        sunday + 21.99 * 3600: False,
        sunday + 22 * 3600: True,  # Sunday 22:00
        sunday + 25.5 * 3600: True,  # Monday 01:30, still Sunday night
        sunday + 26 * 3600: False,  # Monday 02:00: the end is excluded
        sunday - 0.5 * 3600: False,  # Saturday 23:30: Saturday night is not in days
    }
    for at, fires in cases.items():
        assert bool(e.feed([dwell(ALICE, at=at)], now=at)) is fires, format_ts(at)


def test_a_day_window_outside_its_hours_does_not_fire() -> None:
    e = engine(rule(trigger={"event": "presence.dwell", "between": "08:00-09:30"}))
    assert e.feed([dwell(ALICE, at=MONDAY_10)], now=1.0) == []
    assert e.feed([dwell(ALICE, at=MONDAY_10 - 3600)], now=2.0) != []


def test_cooldown_is_per_rule_and_subject() -> None:
    e = engine(
        rule(
            cooldown_s=30,
            actions=[{"output": "disp", "do": "show", "text": "x", "min_interval_s": 0}],
        )
    )
    assert len(e.feed([dwell(ALICE)], now=0.0)) == 1
    assert e.feed([dwell(ALICE)], now=29.9) == []
    assert len(e.feed([dwell(BOB)], now=29.9)) == 1  # another customer is not held back
    assert len(e.feed([dwell(ALICE)], now=30.0)) == 1
    assert e.suppressed == 1


def test_a_rule_with_two_actions_fires_both_despite_its_cooldown() -> None:
    e = engine(
        rule(
            actions=[
                {"output": "disp", "do": "show", "text": "x"},
                {"output": "lamp", "do": "blink", "times": 2},
            ]
        )
    )
    planned = e.feed([dwell(ALICE), dwell(ALICE)], now=0.0)
    assert [p.output for p in planned] == ["disp", "lamp"]


def test_an_output_takes_no_second_action_within_its_rate_limit() -> None:
    a = rule(
        "a",
        cooldown_s=0,
        actions=[{"output": "disp", "do": "show", "text": "a", "min_interval_s": 2}],
    )
    b = rule(
        "b",
        cooldown_s=0,
        actions=[{"output": "disp", "do": "show", "text": "b", "min_interval_s": 5}],
    )
    e = engine(a, b)
    assert e.intervals == {"disp": 5}  # the largest interval aimed at the output counts
    assert outputs(e.feed([dwell(ALICE)], now=0.0)) == [("a", "disp", "a")]
    assert e.feed([dwell(BOB)], now=4.9) == []
    assert outputs(e.feed([dwell(BOB)], now=5.0)) == [("a", "disp", "a")]


def test_the_higher_priority_wins_within_a_batch_and_holds_the_output() -> None:
    low = rule(
        "low",
        priority=1,
        cooldown_s=0,
        actions=[{"output": "disp", "do": "show", "text": "low", "min_interval_s": 1}],
    )
    high = rule(
        "high",
        priority=5,
        cooldown_s=0,
        trigger={"event": "presence.dwell", "subject": "customer"},
        actions=[
            {"output": "disp", "do": "show", "text": "high", "duration_s": 10, "min_interval_s": 1}
        ],
    )
    e = engine(low, high)
    assert outputs(e.feed([dwell(ALICE)], now=0.0)) == [("high", "disp", "high")]
    # It holds the display for its 10 s, against rules of its own priority or lower.
    item = PresenceDwell(
        **common("shelf-a", MONDAY_10),
        subject=Subject(kind="item", id="E1"),
        dwell_s=5.0,
        since=format_ts(MONDAY_10),
    )
    assert e.feed([dwell(BOB), item], now=5.0) == []
    assert e.feed([item], now=9.9) == []
    assert outputs(e.feed([item], now=10.0)) == [("low", "disp", "low")]


def test_a_higher_priority_takes_a_held_output_over_once_the_rate_limit_allows() -> None:
    low = rule(
        "low",
        priority=1,
        cooldown_s=0,
        actions=[
            {"output": "disp", "do": "show", "text": "low", "duration_s": 60, "min_interval_s": 2}
        ],
    )
    high = rule(
        "high",
        priority=2,
        trigger={"event": "presence.exit"},
        actions=[{"output": "disp", "do": "show", "text": "high"}],
    )
    e = engine(low, high)
    gone = PresenceExit(
        **common("shelf-a", MONDAY_10),
        subject=customer(ALICE),
        dwell_s=9.0,
        since=format_ts(MONDAY_10 - 9),
    )
    assert outputs(e.feed([dwell(ALICE)], now=0.0)) == [("low", "disp", "low")]
    assert e.feed([gone], now=1.9) == []  # the rate limit is not for priorities to break
    assert outputs(e.feed([gone], now=2.0)) == [("high", "disp", "high")]


def test_a_missing_template_value_drops_the_action_and_a_fallback_fills_it() -> None:
    offers = rule(
        "offer",
        trigger={"event": "presence.dwell", "subject": "customer"},
        actions=[
            {"output": "disp", "do": "show", "text": "{offer.text}"},
            {"output": "disp2", "do": "show", "text": "{offer.text|Welcome}"},
        ],
    )
    e = engine(offers, content=Content(**{ALICE: "-20% today"}))
    assert outputs(e.feed([dwell(ALICE)], now=0.0)) == [
        ("offer", "disp", "-20% today"),
        ("offer", "disp2", "-20% today"),
    ]
    assert outputs(e.feed([dwell(BOB)], now=10.0)) == [("offer", "disp2", "Welcome")]


def test_conditions_on_cached_content() -> None:
    content = Content(**{ALICE: "x"})
    content.zones["shelf-a"] = {"title": "Cheese"}
    with_offer = rule(
        "o",
        trigger={"event": "presence.dwell", "subject": "customer"},
        conditions={"offer": True, "zone_content": True},
        cooldown_s=0,
        actions=[
            {"output": "disp", "do": "show", "text": "{content.zone.title}", "min_interval_s": 0}
        ],
    )
    e = engine(with_offer, content=content)
    planned = e.feed([dwell(ALICE), dwell(BOB), dwell(ALICE, zone="shelf-b")], now=0.0)
    assert [(p.trigger.subject, p.text) for p in planned] == [(customer(ALICE), "Cheese")]


# A random stream of dwells: who, where, and how long after the previous batch.
_batches = st.lists(
    st.tuples(
        st.lists(
            st.tuples(
                st.sampled_from([ALICE, BOB, "c3" * 32]), st.sampled_from(["shelf-a", "shelf-b"])
            ),
            max_size=4,
        ),
        st.floats(0.0, 3.0),
    ),
    max_size=40,
)
_rule_params = st.lists(
    st.tuples(st.integers(-3, 3), st.floats(0, 10), st.floats(0, 4), st.sampled_from(["d1", "d2"])),
    min_size=1,
    max_size=4,
)


@given(_rule_params, _batches)
def test_no_output_gets_two_actions_closer_than_its_rate_limit(
    params: list[tuple[int, float, float, str]], batches: list[tuple[list[tuple[str, str]], float]]
) -> None:
    rules = [
        rule(
            f"r{i}",
            priority=prio,
            cooldown_s=cooldown,
            actions=[{"output": out, "do": "show", "text": "{zone}", "min_interval_s": interval}],
        )
        for i, (prio, cooldown, interval, out) in enumerate(params)
    ]
    e = engine(*rules)
    now, granted = 0.0, []
    for visits, gap in batches:
        now += gap
        granted += e.feed([dwell(who, zone) for who, zone in visits], now)
    for output, interval in e.intervals.items():
        times = [p.at for p in granted if p.output == output]
        assert all(b - a >= interval for a, b in itertools.pairwise(times)), (output, times)
    for r in rules:
        for who in (ALICE, BOB, "c3" * 32):
            times = [p.at for p in granted if p.rule == r.id and p.trigger.subject == customer(who)]
            assert all(b - a >= r.cooldown_s for a, b in itertools.pairwise(times))


def test_rules_with_and_without_zones_each_fire_once() -> None:
    anywhere = rule(
        "anywhere", cooldown_s=0, actions=[{"output": "d1", "do": "clear", "min_interval_s": 0}]
    )
    here = rule(
        "here",
        cooldown_s=0,
        trigger={"event": "presence.dwell", "zones": ["shelf-a"]},
        actions=[{"output": "d2", "do": "clear", "min_interval_s": 0}],
    )
    status = rule(
        "status",
        cooldown_s=0,
        trigger={"event": "device.status"},
        actions=[{"output": "d3", "do": "clear", "min_interval_s": 0}],
    )
    e = engine(anywhere, here, status)
    down = DeviceStatus(
        id="s1", ts=format_ts(MONDAY_10), store="s", gateway="g", device="door", state="down"
    )
    planned = e.feed([dwell(ALICE), dwell(BOB, zone="shelf-b"), down], now=0.0)
    assert sorted((p.rule, p.trigger.zone or p.trigger.type) for p in planned) == [
        ("anywhere", "shelf-a"),
        ("anywhere", "shelf-b"),
        ("here", "shelf-a"),
        ("status", "device.status"),
    ]
