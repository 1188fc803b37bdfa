"""Which rules fire for a pipeline run's events, and which of their actions may run now.

Pure: events and ``now`` (monotonic seconds) in, ``Planned`` actions out; no I/O, no clock.
The events are the objects the pipeline hands to the outbox (the rules see them just before the
commit), so a rule sees exactly what the central side will see, including the pseudonym, never a
raw id.

Per batch the engine matches each event against the rules for its type (trigger, then
conditions on cached content), renders each action's text (an action whose template lacks a
value is left out: showing half a sentence is worse than nothing), and collects the candidates.
Candidates are then granted best first, by priority (higher first), then event order, then rule
order in the file. A candidate is granted when:

* its rule has not fired for the same subject within ``cooldown_s`` (the other actions of the
  same firing are not blocked by it);
* its output has had no rule action for ``min_interval_s`` (the largest of the values given by
  the actions aimed at it): the rate limit, which no priority overrides;
* its output is not held by an earlier action of higher or equal priority: an action holds its
  output for its ``duration_s`` (or its interval when it has none), so a higher priority rule
  takes a display over once the rate limit allows, and a lower one waits.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo

from gateway.config.rules import (
    DAYS,
    DEFAULT_MIN_INTERVAL_S,
    ActionConfig,
    ConditionsConfig,
    RuleConfig,
    TriggerConfig,
)
from gateway.config.templates import Template
from gateway.events.model import AnyEvent, PresenceDwell, PresenceExit, ShelfWeight
from gateway.rules.context import ContentLookup, EventContext


@dataclass(frozen=True, slots=True)
class Planned:
    """One action to carry out now; ``text`` is the rendered template, if the action has one."""

    rule: str
    trigger: AnyEvent
    output: str
    action: ActionConfig
    text: str | None
    priority: int
    at: float  # monotonic, when it was granted


Firing = tuple[int, int, int]  # batch, event index, rule index: one rule firing on one event


@dataclass(frozen=True, slots=True)
class _Rule:
    index: int
    config: RuleConfig
    templates: tuple[Template | None, ...]  # one per action, parsed once
    window: tuple[int, int] | None  # trigger.between in minutes, parsed once


@dataclass(frozen=True, slots=True)
class _Candidate:
    planned: Planned
    order: tuple[int, int, int, int]  # -priority, event index, rule index, action index
    firing: Firing
    cooldown: tuple[str, str]  # rule id, subject key
    cooldown_s: float


@dataclass(slots=True)
class _Hold:
    last_at: float
    until: float
    priority: int


class RuleEngine:
    def __init__(
        self,
        rules: Sequence[RuleConfig],
        content: ContentLookup,
        *,
        tz: tzinfo | None = None,
    ) -> None:
        """``tz``: the shop's time zone for ``between`` and ``days`` (None: the system's)."""
        # Rules by (event type, zone), None for any zone: most events concern a few rules.
        self._index: dict[tuple[str, str | None], list[_Rule]] = {}
        for index, rule in enumerate(rules):
            if rule.enabled:
                templates = tuple(a.template() for a in rule.actions)
                compiled = _Rule(index, rule, templates, rule.trigger.window_minutes())
                zones: list[str | None] = [*rule.trigger.zones] or [None]
                for zone in zones:
                    self._index.setdefault((rule.trigger.event, zone), []).append(compiled)
        self._content = content
        self._tz = tz
        self.intervals = output_intervals(rules)
        self._longest_cooldown = max((r.cooldown_s for r in rules), default=0.0)
        self._fired: dict[tuple[str, str], tuple[float, Firing]] = {}
        self._holds: dict[str, _Hold] = {}
        self._batch = 0
        self._pruned_at = -math.inf
        self.fired = 0
        self.suppressed = 0

    def feed(self, events: Sequence[AnyEvent], now: float) -> list[Planned]:
        self._batch += 1
        candidates: list[_Candidate] = []
        for e_index, event in enumerate(events):
            for rule in self._rules_for(event):
                candidates += self._match(event, e_index, rule, now)
        if not candidates:
            return []
        candidates.sort(key=lambda c: c.order)
        granted = [c.planned for c in candidates if self._grant(c, now)]
        self.fired += len(granted)
        self.suppressed += len(candidates) - len(granted)
        self._prune(now)
        return granted

    def _rules_for(self, event: AnyEvent) -> list[_Rule]:
        anywhere = self._index.get((event.type, None), [])
        if event.zone is None:
            return anywhere
        return self._index.get((event.type, event.zone), []) + anywhere

    def _match(self, event: AnyEvent, e_index: int, r: _Rule, now: float) -> list[_Candidate]:
        rule = r.config
        if not (self._triggers(r, event) and self._conditions(rule, event)):
            return []
        context = EventContext(event, self._content, self._tz)
        firing = (self._batch, e_index, r.index)
        cooldown = (rule.id, _subject_key(event))
        out = []
        for a_index, (action, template) in enumerate(zip(rule.actions, r.templates, strict=True)):
            text = None
            if template is not None:
                text = template.render(context.resolve)
                if text is None:
                    continue
            planned = Planned(rule.id, event, action.output, action, text, rule.priority, now)
            order = (-rule.priority, e_index, r.index, a_index)
            out.append(_Candidate(planned, order, firing, cooldown, rule.cooldown_s))
        return out

    def _prune(self, now: float) -> None:
        """Forget cooldowns that have run out, now and then, so memory follows traffic."""
        if now - self._pruned_at < max(60.0, self._longest_cooldown):
            return
        self._pruned_at = now
        longest = self._longest_cooldown
        self._fired = {k: v for k, v in self._fired.items() if now - v[0] < longest}

    def _grant(self, c: _Candidate, now: float) -> bool:
        fired = self._fired.get(c.cooldown)
        if fired is not None and fired[1] != c.firing and now - fired[0] < c.cooldown_s:
            return False
        output = c.planned.output
        interval = self.intervals.get(output, DEFAULT_MIN_INTERVAL_S)
        hold = self._holds.get(output)
        if hold is not None:
            if now - hold.last_at < interval:
                return False
            if now < hold.until and c.planned.priority <= hold.priority:
                return False
        duration = c.planned.action.duration_s
        until = now + (duration if duration is not None else interval)
        self._holds[output] = _Hold(now, until, c.planned.priority)
        if fired is None or fired[1] != c.firing:
            self._fired[c.cooldown] = (now, c.firing)
        return True

    def _triggers(self, r: _Rule, event: AnyEvent) -> bool:
        t = r.config.trigger
        if t.zones and event.zone not in t.zones:
            return False
        subject = event.subject
        if t.subject != "any" and (subject is None or subject.kind != t.subject):
            return False
        if t.gtins and (subject is None or subject.gtin not in t.gtins):
            return False
        if t.min_dwell_s is not None and not _dwelled(event, t.min_dwell_s):
            return False
        if t.weight_below_g is not None and not _below(event, t.weight_below_g):
            return False
        return self._in_window(t, r.window, event)

    def _in_window(self, t: TriggerConfig, window: tuple[int, int] | None, event: AnyEvent) -> bool:
        if window is None and not t.days:
            return True
        local = local_time(event.ts, self._tz)
        day = DAYS[local.weekday()]
        minute = local.hour * 60 + local.minute
        if window is None:
            return day in t.days
        start, end = window
        if start < end:
            return start <= minute < end and (not t.days or day in t.days)
        # Past midnight: the window belongs to the day it starts on.
        if minute >= start:
            return not t.days or day in t.days
        if minute < end:
            yesterday = DAYS[(local.weekday() - 1) % 7]
            return not t.days or yesterday in t.days
        return False

    def _conditions(self, rule: RuleConfig, event: AnyEvent) -> bool:
        c: ConditionsConfig = rule.conditions
        subject = event.subject
        if c.offer is not None:
            pseudonym = subject.id if subject is not None else None
            has = pseudonym is not None and self._content.offer(pseudonym) is not None
            if has != c.offer:
                return False
        if c.zone_content is not None:
            has = event.zone is not None and self._content.zone(event.zone) is not None
            if has != c.zone_content:
                return False
        if c.gtin_content is not None:
            gtin = subject.gtin if subject is not None else None
            has = gtin is not None and self._content.gtin(gtin) is not None
            if has != c.gtin_content:
                return False
        return True


@functools.lru_cache(maxsize=256)
def local_time(ts: str, tz: tzinfo | None) -> datetime:
    """An event's ``ts`` in the shop's time; cached, as every rule of a batch asks again."""
    return datetime.fromisoformat(ts).astimezone(tz)


def _dwelled(event: AnyEvent, min_dwell_s: float) -> bool:
    return isinstance(event, PresenceDwell | PresenceExit) and event.dwell_s >= min_dwell_s


def _below(event: AnyEvent, grams: float) -> bool:
    return isinstance(event, ShelfWeight) and event.grams < grams


def output_intervals(rules: Sequence[RuleConfig]) -> Mapping[str, float]:
    """Each output's rate limit: the largest ``min_interval_s`` among the actions aimed at it."""
    intervals: dict[str, float] = {}
    for rule in rules:
        for action in rule.actions:
            intervals[action.output] = max(intervals.get(action.output, 0.0), action.min_interval_s)
    return intervals


def _subject_key(event: AnyEvent) -> str:
    """What a cooldown counts per: the subject (pseudonym or EPC), else the zone."""
    subject = event.subject
    if subject is not None and subject.id is not None:
        return f"{subject.kind}:{subject.id}"
    return f"zone:{event.zone}"
