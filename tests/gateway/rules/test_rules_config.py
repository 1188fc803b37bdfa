"""``[[rules]]`` in the config: field errors from the models, and the checks that need the whole
file (outputs, zones, reachable thresholds, template fields), each at its line."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest
from pydantic import ValidationError

from gateway.config import parse_config
from gateway.config.root import Config
from gateway.config.rules import RuleConfig
from gateway.errors import ConfigError

# The loader and Config take [[rules]] once the daemon is wired for them; until then these
# tests wait for it instead of failing.
WIRED = "RuleConfig" in str(Config.model_fields["rules"].annotation)
needs_wiring = pytest.mark.skipif(not WIRED, reason="Config.rules is not list[RuleConfig] yet")

HEAD = """\
[site]
store = "s1"
gateway = "g1"
[mqtt]
[[readers]]
id = "door"
driver = "thingmagic"
port = "/dev/null"
antennas = { 1 = "entrance", 2 = "shelf-a" }
[[zones]]
id = "shelf-a"
dwell_s = 5.0
[[outputs]]
id = "disp"
driver = "serial-display"
port = "/dev/null"
lines = 2
[[outputs]]
id = "lamp"
driver = "relay"
port = "/dev/null"
channels = 2
[[outputs]]
id = "labels"
driver = "openepaperlink"
url = "http://192.0.2.1"
tags = { cheese = "0000021F8A3C4D5E" }
"""


def problems(rules: str) -> list[str]:
    """``LINE: path: message`` of each problem, lines counted in ``rules`` alone."""
    offset = HEAD.count("\n")
    with pytest.raises(ConfigError) as info:
        parse_config(HEAD + textwrap.dedent(rules), "gw.toml", check_files=False)
    return [f"{p.line - offset}: {p.path}: {p.message}" for p in info.value.problems]


def test_model_errors_name_the_field() -> None:
    bad: dict[str, Any] = {
        "id": "r1",
        "trigger": {"event": "presence.linger", "between": "25:00-26:00", "gtins": ["12ab"]},
        "actions": [{"output": "disp", "do": "show", "text": "{subject.id}"}],
        "colour": "red",
    }
    with pytest.raises(ValidationError) as info:
        RuleConfig.model_validate(bad)
    where = {".".join(str(p) for p in e["loc"]): e["msg"] for e in info.value.errors()}
    assert "not an event a rule can react to" in where["trigger.event"]
    assert "is not HH:MM-HH:MM" in where["trigger.between"]
    assert "is not a GTIN" in where["trigger.gtins"]
    assert "customer ids can never be shown" in where["actions.0.text"]
    assert "colour" in where


def test_a_rule_needs_an_action_and_a_window_cannot_be_empty() -> None:
    with pytest.raises(ValidationError, match="at least 1 item"):
        RuleConfig.model_validate({"id": "r", "trigger": {"event": "item.pickup"}, "actions": []})
    with pytest.raises(ValidationError, match="empty window"):
        RuleConfig.model_validate(
            {
                "id": "r",
                "trigger": {"event": "item.pickup", "between": "10:00-10:00"},
                "actions": [{"output": "x", "do": "clear"}],
            }
        )


@needs_wiring
def test_a_valid_rule_loads() -> None:
    config = parse_config(
        HEAD
        + textwrap.dedent("""
        [[rules]]
        id = "dwell-offer"
        priority = 5
        cooldown_s = 60
        conditions = { offer = true }
        [rules.trigger]
        event = "presence.dwell"
        zones = ["shelf-a"]
        subject = "customer"
        between = "08:00-20:00"
        days = ["mon", "sat"]
        [[rules.actions]]
        output = "disp"
        do = "show"
        line = 2
        text = "{offer.text|Welcome} ({dwell_s:.0f} s)"
        duration_s = 10
        [[rules.actions]]
        output = "lamp"
        do = "blink"
        channel = 2
        times = 3
        [[rules.actions]]
        output = "labels"
        do = "show"
        tag = "cheese"
        text = "{content.zone.title|Cheese}"
        """),
        check_files=False,
    )
    (rule,) = config.rules
    assert [a.output for a in rule.actions] == ["disp", "lamp", "labels"]
    assert rule.trigger.window_minutes() == (8 * 60, 20 * 60)


@needs_wiring
def test_whole_file_problems_come_with_their_lines() -> None:
    found = problems("""
        [[rules]]
        id = "r1"
        trigger = { event = "item.pickup", zones = ["shelf-z"], weight_below_g = 100 }
        [[rules.actions]]
        output = "disp"
        do = "show"
        text = "{gtin} {dwell_s}"
        [[rules.actions]]
        output = "nowhere"
        do = "clear"
        [[rules.actions]]
        output = "lamp"
        do = "show"
        text = "x"
        [[rules]]
        id = "r1"
        trigger = {event="presence.dwell",subject="customer",min_dwell_s=30,gtins=["40063813"]}
        conditions = { gtin_content = true }
        [[rules.actions]]
        output = "lamp"
        do = "switch"
        channel = 3
        [[rules.actions]]
        output = "disp"
        do = "show"
        line = 3
        text = "{grams} {offer.text}"
        [[rules.actions]]
        output = "labels"
        do = "show"
        text = "x"
        [[rules.actions]]
        output = "disp"
        do = "clear"
        text = "x"
    """)
    assert found == [
        "4: rules.0.trigger.zones: unknown zone 'shelf-z'",
        "4: rules.0.trigger.weight_below_g: only shelf.weight events carry grams",
        "8: rules.0.actions.0.text: {dwell_s}: item.pickup events have no dwell_s",
        "10: rules.0.actions.1.output: unknown output 'nowhere' (disp, lamp, labels)",
        "14: rules.0.actions.2.do: a relay output can only switch or blink",
        "17: rules.1.id: rule id 'r1' is used twice",
        "18: rules.1.trigger.gtins: only items have a GTIN: this trigger has none",
        "18: rules.1.trigger.min_dwell_s: presence.dwell comes once, at the zone's dwell_s "
        "(5 s), so 30 s is never reached: raise the zone's dwell_s or use presence.exit",
        "19: rules.1.conditions.gtin_content: this trigger has no item",
        "23: rules.1.actions.0.channel: lamp has 2 channel(s)",
        "27: rules.1.actions.1.line: disp has 2 line(s)",
        "28: rules.1.actions.1.text: {grams}: only shelf.weight has it",
        "29: rules.1.actions.2.tag: name one of the tags of labels (cheese)",
        "36: rules.1.actions.3.text: clear on serial-display shows no text",
    ]


@needs_wiring
def test_a_bad_template_is_a_located_field_error() -> None:
    found = problems("""
        [[rules]]
        id = "r1"
        trigger = { event = "presence.enter" }
        [[rules.actions]]
        output = "disp"
        do = "show"
        text = "{subject.id}"
    """)
    assert found == [
        "8: rules.0.actions.0.text: {subject.id}: customer ids can never be shown",
    ]
