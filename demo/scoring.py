"""Ground-truth scoring: how well detected visits match what really happened.

A visit is one subject's continuous stay in one zone. Detected and true visits of the same
(subject, zone) are paired one to one, greedily by intersection over union, and a pair counts
only when its IoU is at least ``min_iou``: a true visit broken in two matches one half and
the other half is a false positive, so splitting costs precision and dwell error.

Latencies compare when the consumer *saw* an event with when the change really happened, so
they include the smoothing delay, not only transport: enter latency is the enter's arrival minus
the true start; exit latency the exit's arrival minus the true end. Dwell error compares
durations of matched, closed visits. All times must share one clock (the caller maps).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from gateway.events.model import parse_ts
from gateway.stages.transitions import Transition, TransitionKind


@dataclass(frozen=True, slots=True)
class TrueVisit:
    subject: str
    zone: str
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class DetectedVisit:
    subject: str
    zone: str
    start: float
    end: float | None  # None: still open when the run ended
    enter_seen_at: float | None
    exit_seen_at: float | None


@dataclass(frozen=True, slots=True)
class Score:
    true_visits: int
    detected_visits: int
    matched: int
    precision: float
    recall: float
    f1: float
    enter_latency_p50: float  # seconds; NaN when nothing was measured
    enter_latency_p95: float
    exit_latency_p50: float
    exit_latency_p95: float
    dwell_error_p50: float  # |detected duration - true duration|, seconds
    dwell_error_p95: float

    def summary(self) -> str:
        return (
            f"visits: {self.true_visits} true, {self.detected_visits} detected, "
            f"{self.matched} matched; precision {self.precision:.3f} recall {self.recall:.3f} "
            f"F1 {self.f1:.3f}\n"
            f"latency (s, p50/p95): enter {_pair(self.enter_latency_p50, self.enter_latency_p95)}"
            f"  exit {_pair(self.exit_latency_p50, self.exit_latency_p95)}"
            f"  dwell error {_pair(self.dwell_error_p50, self.dwell_error_p95)}"
        )

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _pair(p50: float, p95: float) -> str:
    """``0.15/0.29``; a dash for a figure without samples (no visit ended before a Ctrl-C)."""
    return "/".join(_shown(v) for v in (p50, p95))


def _shown(value: float, digits: int = 2) -> str:
    """A figure, or a dash where there was nothing to measure (nan)."""
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def _iou(true: TrueVisit, det: DetectedVisit, horizon: float) -> float:
    end = horizon if det.end is None else det.end
    overlap = min(true.end, end) - max(true.start, det.start)
    union = max(true.end, end) - min(true.start, det.start)
    return overlap / union if overlap > 0 and union > 0 else 0.0


def match(
    truth: Sequence[TrueVisit], detected: Sequence[DetectedVisit], min_iou: float = 0.5
) -> list[tuple[TrueVisit, DetectedVisit]]:
    horizon = max((v.end for v in truth), default=0.0)
    by_key: dict[tuple[str, str], list[DetectedVisit]] = defaultdict(list)
    for det in detected:
        by_key[det.subject, det.zone].append(det)
    candidates = [
        (_iou(tv, det, horizon), i, j, tv, det)
        for i, tv in enumerate(truth)
        for j, det in enumerate(by_key.get((tv.subject, tv.zone), ()))
    ]
    candidates.sort(key=lambda c: (-c[0], c[1], c[2]))
    used_true: set[int] = set()
    used_det: set[int] = set()
    pairs = []
    for iou, i, _, tv, det in candidates:
        if iou < min_iou or i in used_true or id(det) in used_det:
            continue
        used_true.add(i)
        used_det.add(id(det))
        pairs.append((tv, det))
    return pairs


def _quantiles(values: list[float]) -> tuple[float, float]:
    if not values:
        return math.nan, math.nan
    p50, p95 = np.percentile(np.asarray(values), [50, 95])
    return float(p50), float(p95)


def score(
    truth: Sequence[TrueVisit], detected: Sequence[DetectedVisit], min_iou: float = 0.5
) -> Score:
    pairs = match(truth, detected, min_iou)
    precision = len(pairs) / len(detected) if detected else 1.0
    recall = len(pairs) / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    enter = [d.enter_seen_at - t.start for t, d in pairs if d.enter_seen_at is not None]
    exit_ = [d.exit_seen_at - t.end for t, d in pairs if d.exit_seen_at is not None]
    dwell = [
        abs((d.end - d.start) - (t.end - t.start)) for t, d in pairs if d.end is not None
    ]  # fmt: skip
    return Score(
        len(truth), len(detected), len(pairs), precision, recall, f1,
        *_quantiles(enter), *_quantiles(exit_), *_quantiles(dwell),
    )  # fmt: skip


def _time(value: object) -> float:
    if isinstance(value, str):
        return parse_ts(value)
    if isinstance(value, int | float):
        return float(value)
    raise TypeError(f"not a timestamp: {value!r}")


def _subject_id(event: Mapping[str, object]) -> str:
    subject = event.get("subject")
    if isinstance(subject, Mapping):
        return str(subject.get("id"))
    return "None"


def visits_from_events(
    events: Iterable[Mapping[str, object]],
    received_at: Sequence[float | None] | None = None,
) -> list[DetectedVisit]:
    """Visits from event dicts (docs/contract.md, "Events"), in arrival order; ``received_at[i]``
    is when event i arrived (same clock as the events' ``ts``). Dwells and non-presence events are
    skipped."""
    open_: dict[tuple[str, str], tuple[float, float | None]] = {}
    visits: list[DetectedVisit] = []
    for i, event in enumerate(events):
        seen = received_at[i] if received_at is not None else None
        kind, key = event.get("type"), (_subject_id(event), str(event.get("zone")))
        if kind == "presence.enter":
            open_[key] = (_time(event["ts"]), seen)
        elif kind == "presence.exit":
            start, enter_seen = open_.pop(key, (_time(event["since"]), None))
            visits.append(DetectedVisit(*key, start, _time(event["ts"]), enter_seen, seen))
    visits += [DetectedVisit(*key, s, None, seen, None) for key, (s, seen) in open_.items()]
    return visits


def visits_from_transitions(
    seen: Iterable[tuple[Transition, float]], subjects: Sequence[str], zones: Sequence[str]
) -> list[DetectedVisit]:
    """Visits straight from the presence stage, each transition with the time it was emitted."""
    open_: dict[int, tuple[Transition, float]] = {}
    visits: list[DetectedVisit] = []
    for tr, at in seen:
        if tr.kind == TransitionKind.ENTER:
            open_[tr.subject] = (tr, at)
        elif tr.kind == TransitionKind.EXIT:
            enter_at = open_.pop(tr.subject)[1] if tr.subject in open_ else None
            name, zone = subjects[tr.subject], zones[tr.zone]
            visits.append(DetectedVisit(name, zone, tr.since, tr.t, enter_at, at))
    visits += [
        DetectedVisit(subjects[s], zones[tr.zone], tr.since, None, at, None)
        for s, (tr, at) in open_.items()
    ]
    return visits


# -- who picked it up ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TrueMove:
    t: float
    kind: str  # "pickup" | "putback"
    item: str
    customer: str  # as the events name customers (the pseudonym, by default)


@dataclass(frozen=True, slots=True)
class AttributionScore:
    true_moves: int
    detected: int  # item events of the kinds scored
    matched: int  # detected events paired with a true move of the same item and kind
    named: int  # matched events that name a customer
    correct: int  # ... the customer who really moved the item

    @property
    def accuracy(self) -> float:
        """Of the matched moves, the share attributed to the right customer."""
        return self.correct / self.matched if self.matched else math.nan

    def summary(self) -> str:
        return (
            f"pickups and putbacks: {self.true_moves} true, {self.detected} detected, "
            f"{self.matched} matched; attributed to the right customer {self.correct} of "
            f"{self.matched} ({_shown(self.accuracy, 3)}), "
            f"to someone else {self.named - self.correct}"
        )


def score_attribution(
    truth: Sequence[TrueMove], events: Iterable[Mapping[str, object]], window_s: float = 5.0
) -> AttributionScore:
    """Item events paired with true moves of the same item and kind within ``window_s``,
    closest first; then whether each pair names the true customer."""
    detected = [e for e in events if e.get("type") in ("item.pickup", "item.putback")]
    candidates = sorted(
        (abs(_time(e["ts"]) - m.t), i, j)
        for i, m in enumerate(truth)
        for j, e in enumerate(detected)
        if e["type"] == f"item.{m.kind}" and _subject_id(e) == m.item
        and abs(_time(e["ts"]) - m.t) <= window_s
    )  # fmt: skip
    used_true: set[int] = set()
    used_det: set[int] = set()
    named = correct = 0
    for _, i, j in candidates:
        if i in used_true or j in used_det:
            continue
        used_true.add(i)
        used_det.add(j)
        customer = detected[j].get("customer")
        who = customer.get("id") if isinstance(customer, Mapping) else None
        named += who is not None
        correct += who == truth[i].customer
    return AttributionScore(len(truth), len(detected), len(used_true), named, correct)
