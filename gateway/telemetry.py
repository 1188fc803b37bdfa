"""Counters the daemon keeps about itself, cheap enough for the hot path, and what reads them.

The pipeline, the uplink and the device contexts only add to plain integers and these small
fixed-bucket histograms; nothing is formatted until somebody looks. Two readers look: the
retained status (``counters`` there) and, when enabled, the Prometheus endpoint
(``gateway/service/metrics.py``). Both read the same numbers, so they cannot disagree.

They see the daemon only as ``Telemetry``: the read-only surface below, which names every
figure they read and nothing else. The live page (``gateway/web/view.py``) sees a little more
(``Observed``: the clock, who is in which zone, how to name a subject), and the same way. The
daemon satisfies both, and neither reader imports it.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Protocol

if TYPE_CHECKING:
    from gateway.clock import Clock
    from gateway.config import Config
    from gateway.events.model import Subject
    from gateway.outbox import Backlog
    from gateway.reads.batch import ReadBatch, Subjects

# Seconds: from sub-millisecond kernel calls to publishes that wait on a slow broker.
DEFAULT_BOUNDS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)


@dataclass(slots=True)
class Histogram:
    """Cumulative counts per upper bound, as Prometheus histograms report them."""

    bounds: Sequence[float] = DEFAULT_BOUNDS
    counts: list[int] = field(default_factory=list)
    count: int = 0
    total: float = 0.0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.count += 1
        self.total += value

    def buckets(self) -> list[tuple[str, int]]:
        """(upper bound, cumulative count) pairs, ending with +Inf."""
        running, out = 0, []
        for bound, n in zip([*map(str, self.bounds), "+Inf"], self.counts, strict=True):
            running += n
            out.append((bound, running))
        return out

    def quantile(self, q: float) -> float | None:
        """The upper bound of the bucket holding quantile ``q``; None before any observation."""
        if not self.count:
            return None
        target, running = q * self.count, 0
        for bound, n in zip(self.bounds, self.counts, strict=False):
            running += n
            if running >= target:
                return bound
        return float("inf")


class ReaderFigures(Protocol):
    """A device context's counters (``DeviceContext``)."""

    @property
    def name(self) -> str: ...

    @property
    def reads(self) -> int: ...

    @property
    def unmapped_reads(self) -> int: ...

    @property
    def reads_by_antenna(self) -> Mapping[int, int]: ...


class PipelineFigures(Protocol):
    """``Pipeline``: events stored by type, stage time per run, and the tap the page's ring
    sets while somebody watches."""

    tap: Callable[[ReadBatch], None] | None

    @property
    def events_by_type(self) -> Mapping[str, int]: ...

    @property
    def stage_seconds(self) -> Histogram: ...


class InboundFigures(Protocol):
    def rejections(self) -> Mapping[str, Mapping[str, int]]: ...


class UplinkFigures(Protocol):
    """``Uplink``: what was delivered, how fast, whether it is connected, what it refused."""

    @property
    def published(self) -> int: ...

    @property
    def publish_seconds(self) -> Histogram: ...

    @property
    def connected(self) -> asyncio.Event: ...

    @property
    def inbound(self) -> InboundFigures: ...


class DeviceStates(Protocol):
    """``StatusBoard``: each device's and output's state, and the detail of one not ok."""

    @property
    def devices(self) -> Mapping[str, str]: ...

    @property
    def details(self) -> Mapping[str, str]: ...


class BacklogSource(Protocol):
    def backlog(self) -> Backlog: ...


class Telemetry(Protocol):
    """What the status counters and the Prometheus endpoint read
    (``gateway.service.daemon.Daemon``)."""

    @property
    def pipeline(self) -> PipelineFigures: ...

    @property
    def uplink(self) -> UplinkFigures: ...

    @property
    def contexts(self) -> Sequence[ReaderFigures]: ...

    @property
    def sessions(self) -> Sequence[object]:
        """The device sessions, in the order of ``contexts``; some count rejected frames."""
        ...

    @property
    def status(self) -> DeviceStates: ...

    @property
    def outbox(self) -> BacklogSource: ...


class Visits(Protocol):
    def visits(self) -> dict[int, tuple[int, float]]: ...


class SubjectNames(Protocol):
    def subject(self, index: int) -> Subject: ...


class PseudonymMode(Protocol):
    @property
    def mode(self) -> str: ...


class Observed(Telemetry, Protocol):
    """What the live page reads besides the figures: the clock the reads are stamped with, the
    config it was started with, the presence stage's visits, the zones' names, and what names a
    subject (its raw id and kind, the event factory's subject, the pseudonym mode)."""

    @property
    def clock(self) -> Clock: ...

    @property
    def config(self) -> Config: ...

    @property
    def stage(self) -> Visits: ...

    @property
    def zone_names(self) -> Sequence[str]: ...

    @property
    def subjects(self) -> Subjects: ...

    @property
    def factory(self) -> SubjectNames: ...

    @property
    def pseudonymizer(self) -> PseudonymMode: ...
