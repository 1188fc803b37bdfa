"""How soon a shelf scale is polled again: in proportion to what a poll can tell.

A settled shelf's readings say nothing new, so it is polled at ``idle_hz``; as soon as a reading
leaves the load it was still at by more than ``stable_g`` (a hand, an item, a drift that has added
up) it is polled at ``fast_hz`` again, until the readings have stayed within ``stable_g`` of each
other for ``still_s``. ``still_s`` is longer than the settle window plus a poll, so the settle
detection (``gateway.stages.shelf``) always gets its window of fast readings after a change and
settles as it would at ``fast_hz`` throughout. The cost is latency: a change's first reading comes
up to one idle period after the hand (docs/shelves.md has the figures).

Time is an argument: the session passes its loop's clock.
"""

from __future__ import annotations


class PollPace:
    def __init__(self, fast_hz: float, idle_hz: float, stable_g: float, settle_s: float) -> None:
        self.fast_s = 1.0 / fast_hz
        self.idle_s = 1.0 / min(idle_hz, fast_hz)
        self.stable_g = stable_g
        self.still_s = 2 * settle_s + 2 * self.fast_s
        self._anchor: float | None = None  # the load the readings are still at
        self._moved = -float("inf")  # when a reading last left it

    def after(self, t: float, grams: float | None) -> float:
        """Seconds to the next poll after one at ``t`` that read ``grams`` (None: lost)."""
        if grams is not None and (
            self._anchor is None or abs(grams - self._anchor) > self.stable_g
        ):
            self._moved = t
            self._anchor = grams
        return self.fast_s if t - self._moved < self.still_s else self.idle_s
