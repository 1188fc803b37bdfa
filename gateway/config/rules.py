"""``[[rules]]``: local reactions to events, run on the gateway with or without a broker.

A rule has a trigger (which events), optional conditions (on cached central content), and
actions on outputs; docs/rules.md is the reference. Each field is checked on its own here, so
pydantic places the error at its key. What needs the rest of the file (an output that exists
and can do the action, zones that exist, thresholds the trigger can reach, template fields
the triggering event has) is ``check_rules``, run by the loader after the models validate;
it returns located problems instead of raising, because a ValueError raised by a model
validator loses the key it is about.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Final, Literal, Protocol

from pydantic import Field, field_validator

from gateway.config.base import DeviceId, Model, Name, ZoneId
from gateway.config.outputs import (
    OpenEPaperLinkOutput,
    OutputConfig,
    RelayOutput,
    SerialDisplayOutput,
)
from gateway.config.sections import ZoneConfig
from gateway.config.templates import Template, TemplateError
from gateway.events.model import EVENT_TYPES

GTIN_LENGTHS: Final = (8, 12, 13, 14)
BETWEEN_PATTERN: Final = r"^([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-4]):([0-5][0-9])$"
TRIGGER_EVENTS: Final = tuple(t for t in EVENT_TYPES if t != "action.executed")
DEFAULT_MIN_INTERVAL_S: Final = 1.0
DEFAULT_DEADLINE_S: Final = 3.0

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: Final[tuple[Day, ...]] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Seconds = Annotated[float, Field(gt=0, le=86400)]


class TriggerConfig(Model):
    event: str
    zones: list[ZoneId] = Field(default_factory=list)  # empty: any zone
    subject: Literal["customer", "item", "any"] = "any"
    min_dwell_s: Annotated[float, Field(ge=0, le=86400)] | None = None
    gtins: list[str] = Field(default_factory=list)  # empty: any item
    weight_below_g: float | None = None
    between: str | None = None  # "HH:MM-HH:MM" local time; may wrap past midnight
    days: list[Day] = Field(default_factory=list)  # empty: every day

    @field_validator("event")
    @classmethod
    def _known_event(cls, event: str) -> str:
        if event not in TRIGGER_EVENTS:
            raise ValueError(f"{event!r} is not an event a rule can react to ({TRIGGERS_TEXT})")
        return event

    @field_validator("gtins")
    @classmethod
    def _gtin14(cls, gtins: list[str]) -> list[str]:
        for gtin in gtins:
            if not (gtin.isdigit() and len(gtin) in GTIN_LENGTHS):
                raise ValueError(f"{gtin!r} is not a GTIN (8, 12, 13 or 14 digits)")
        return [g.zfill(14) for g in gtins]

    @field_validator("between")
    @classmethod
    def _window(cls, between: str | None) -> str | None:
        if between is None:
            return None
        m = re.match(BETWEEN_PATTERN, between)
        if m is None:
            raise ValueError(f"{between!r} is not HH:MM-HH:MM")
        if m.group(1, 2) == m.group(3, 4):
            raise ValueError(f"{between!r} is an empty window")
        if m.group(3) == "24" and m.group(4) != "00":
            raise ValueError(f"{between!r}: the latest end is 24:00")
        return between

    def window_minutes(self) -> tuple[int, int] | None:
        """``between`` as minutes after midnight (start, end)."""
        if self.between is None:
            return None
        start, end = self.between.split("-")
        return _minutes(start), _minutes(end)


TRIGGERS_TEXT: Final = ", ".join(TRIGGER_EVENTS)


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


class ConditionsConfig(Model):
    """True: only when it is cached; false: only when it is not; unset: either."""

    offer: bool | None = None  # an offer for the customer pseudonym
    zone_content: bool | None = None
    gtin_content: bool | None = None


class ActionConfig(Model):
    output: DeviceId
    do: Literal["show", "clear", "switch", "blink"]
    text: str | None = None  # a template (gateway/config/templates.py)
    line: Annotated[int, Field(ge=1, le=8)] = 1  # serial displays
    tag: Name | None = None  # openepaperlink: a name from the output's tags
    channel: Annotated[int, Field(ge=1, le=16)] = 1  # relays
    on: bool = True  # switch: the state to set (for duration_s, if given)
    duration_s: Seconds | None = None
    times: Annotated[int, Field(ge=1, le=20)] = 3  # blink
    period_s: Annotated[float, Field(ge=0.1, le=10)] = 1.0  # blink: on for half of it
    # The output takes no rule action sooner than this after the last one (the largest value
    # among the actions aimed at it counts): a display does not flicker.
    min_interval_s: Annotated[float, Field(ge=0, le=3600)] = DEFAULT_MIN_INTERVAL_S
    deadline_s: Annotated[float, Field(gt=0, le=9)] = DEFAULT_DEADLINE_S

    @field_validator("text")
    @classmethod
    def _template(cls, text: str | None) -> str | None:
        if text is not None:
            try:
                Template.parse(text)
            except TemplateError as exc:
                raise ValueError(str(exc)) from None
        return text

    def template(self) -> Template | None:
        return None if self.text is None else Template.parse(self.text)


class RuleConfig(Model):
    """A local reaction to events: trigger, conditions, actions (docs/rules.md)."""

    id: Name  # named in every action.executed event
    trigger: TriggerConfig  # [rules.trigger]: event, zones, subject, thresholds, time window
    conditions: ConditionsConfig = ConditionsConfig()  # offer, zone_content, gtin_content
    actions: list[ActionConfig] = Field(min_length=1, max_length=8)  # [[rules.actions]]
    priority: Annotated[int, Field(ge=-1000, le=1000)] = 0  # higher wins an output
    cooldown_s: Annotated[float, Field(ge=0, le=86400)] = 30.0  # per rule and subject
    enabled: bool = True  # false keeps the rule in the file without running it


# --- checks that need the whole file -------------------------------------------------------

Loc = tuple[str | int, ...]
Located = tuple[Loc, str]

SUBJECT_EVENTS: Final = frozenset(
    {"presence.enter", "presence.dwell", "presence.exit", "item.pickup", "item.putback"}
)
DWELL_EVENTS: Final = frozenset({"presence.dwell", "presence.exit"})
OFFER_NEEDS_CUSTOMER: Final = 'offers are per customer: set subject = "customer"'
ACTIONS_BY_KIND: Final = {
    "relay": ("switch", "blink"),
    "serial-display": ("show", "clear"),
    "openepaperlink": ("show",),
}


class WholeConfig(Protocol):
    """What ``check_rules`` reads of ``gateway.config.Config``."""

    @property
    def rules(self) -> Sequence[RuleConfig]: ...

    @property
    def outputs(self) -> Sequence[OutputConfig]: ...

    def all_zones(self) -> list[ZoneConfig]: ...


def check_rules(config: WholeConfig) -> list[Located]:
    """Every problem of ``config.rules`` that needs the rest of the file, with its location."""
    outputs = {o.id: o for o in config.outputs}
    zones = {z.id: z.dwell_s for z in config.all_zones()}
    problems: list[Located] = []
    seen: set[str] = set()
    for i, rule in enumerate(config.rules):
        at: Loc = ("rules", i)
        if rule.id in seen:
            problems.append(((*at, "id"), f"rule id {rule.id!r} is used twice"))
        seen.add(rule.id)
        problems += [((*at, *loc), msg) for loc, msg in _trigger_problems(rule, zones)]
        for j, action in enumerate(rule.actions):
            for loc, msg in _action_problems(rule, action, outputs):
                problems.append(((*at, "actions", j, *loc), msg))
    return problems


def _trigger_problems(rule: RuleConfig, zones: dict[str, float]) -> list[Located]:
    t, c = rule.trigger, rule.conditions
    out: list[Located] = []
    out += [(("trigger", "zones"), f"unknown zone {z!r}") for z in t.zones if z not in zones]
    has_subject = t.event in SUBJECT_EVENTS
    if not has_subject and t.subject != "any":
        out.append((("trigger", "subject"), f"{t.event} events have no subject"))
    if t.gtins and (not has_subject or t.subject == "customer"):
        out.append((("trigger", "gtins"), "only items have a GTIN: this trigger has none"))
    if t.weight_below_g is not None and t.event != "shelf.weight":
        out.append((("trigger", "weight_below_g"), "only shelf.weight events carry grams"))
    if t.min_dwell_s is not None:
        out += [(("trigger", "min_dwell_s"), m) for m in _dwell_problem(t, zones)]
    if c.offer is not None and not (has_subject and t.subject == "customer"):
        out.append((("conditions", "offer"), OFFER_NEEDS_CUSTOMER))
    if c.gtin_content is not None and (not has_subject or t.subject == "customer"):
        out.append((("conditions", "gtin_content"), "this trigger has no item"))
    if c.zone_content is not None and t.event == "device.status":
        out.append((("conditions", "zone_content"), "device.status events have no zone"))
    return out


def _dwell_problem(t: TriggerConfig, zones: dict[str, float]) -> list[str]:
    if t.event not in DWELL_EVENTS:
        return [f"{t.event} events have no dwell time (presence.dwell, presence.exit do)"]
    reach = [zones[z] for z in (t.zones or zones) if z in zones]
    # presence.dwell is emitted once, when the zone's dwell_s is reached: its dwell_s is that
    # threshold (plus at most a pipeline run), never more.
    if t.event == "presence.dwell" and reach and (t.min_dwell_s or 0.0) > max(reach) + 1.0:
        return [
            f"presence.dwell comes once, at the zone's dwell_s ({max(reach):g} s), so "
            f"{t.min_dwell_s:g} s is never reached: raise the zone's dwell_s or use "
            "presence.exit"
        ]
    return []


def _action_problems(
    rule: RuleConfig, action: ActionConfig, outputs: dict[str, OutputConfig]
) -> list[Located]:
    output = outputs.get(action.output)
    if output is None:
        known = ", ".join(outputs) or "none configured"
        return [(("output",), f"unknown output {action.output!r} ({known})")]
    can = ACTIONS_BY_KIND[output.driver]
    if action.do not in can:
        return [(("do",), f"a {output.driver} output can only {' or '.join(can)}")]
    out = _output_problems(action, output)
    if action.text is not None:
        out += [(("text",), msg) for msg in template_problems(rule.trigger, action)]
    return out


def _output_problems(action: ActionConfig, output: OutputConfig) -> list[Located]:
    out: list[Located] = []
    needs_text = output.driver != "relay" and action.do == "show"
    if needs_text and action.text is None:
        out.append((("text",), f"{action.do} on {output.driver} needs a text"))
    if not needs_text and action.text is not None:
        out.append((("text",), f"{action.do} on {output.driver} shows no text"))
    if isinstance(output, RelayOutput) and action.channel > output.channels:
        out.append((("channel",), f"{output.id} has {output.channels} channel(s)"))
    if isinstance(output, SerialDisplayOutput) and action.line > output.lines:
        out.append((("line",), f"{output.id} has {output.lines} line(s)"))
    if isinstance(output, OpenEPaperLinkOutput) and action.tag not in output.tags:
        tags = ", ".join(output.tags)
        out.append((("tag",), f"name one of the tags of {output.id} ({tags})"))
    return out


def template_problems(trigger: TriggerConfig, action: ActionConfig) -> list[str]:
    """Fields the triggering events can never have."""
    template = action.template()
    if template is None:
        return []
    problems = []
    for field in template.fields:
        why = _unavailable(field.path, trigger)
        if why is not None:
            problems.append(f"{{{field.name}}}: {why}")
    return problems


def _unavailable(path: tuple[str, ...], t: TriggerConfig) -> str | None:
    has_subject = t.event in SUBJECT_EVENTS
    head = path[0]
    item = head in ("gtin", "serial") or path[:2] == ("content", "gtin")
    zone = head == "zone" or path[:2] == ("content", "zone")
    # (field applies, the trigger can give it, why not) in the order they are checked
    checks = [
        (head == "dwell_s", t.event in DWELL_EVENTS, f"{t.event} events have no dwell_s"),
        (head in ("grams", "delta_g"), t.event == "shelf.weight", "only shelf.weight has it"),
        (head == "weight_delta_g", t.event.startswith("item."), "only item.* events have it"),
        (item, has_subject and t.subject != "customer", "this trigger has no item"),
        (head == "offer", has_subject and t.subject == "customer", OFFER_NEEDS_CUSTOMER),
        (head == "kind", has_subject, f"{t.event} events have no subject"),
        (zone, t.event != "device.status", "device.status events have no zone"),
    ]
    return next((why for applies, can, why in checks if applies and not can), None)
