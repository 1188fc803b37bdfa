"""Topic names below ``P`` = ``{topic_prefix}/{store}/{gateway}`` (docs/contract.md, "MQTT"),
the check a topic filter must pass before it goes to a broker, and how long one publish may wait
for the broker's acknowledgement (the uplink's events, status and info, and the command results
and request responses it publishes for the channels)."""

from __future__ import annotations

from typing import Final, Literal

EventTopics = Literal["levels", "dotted"]
TOPIC_MAX_BYTES: Final = 65_535  # MQTT: a topic or filter is a length-prefixed UTF-8 string
PUBLISH_TIMEOUT_S: Final = 30.0


def event_topic(base: str, event_type: str, style: EventTopics = "levels") -> str:
    """``P/event/presence/enter`` (the type's parts as levels, so ``P/event/presence/#`` selects
    every presence event), or ``P/event/presence.enter`` in the form before contract v2."""
    suffix = event_type if style == "dotted" else event_type.replace(".", "/")
    return f"{base}/event/{suffix}"


def filter_problem(topic_filter: str) -> str | None:
    """Why a broker would refuse ``topic_filter`` (MQTT 3.1.1 4.7, v5 4.7), or None."""
    if not topic_filter:
        return "is empty"
    if "\0" in topic_filter:
        return "contains NUL"
    if len(topic_filter.encode()) > TOPIC_MAX_BYTES:
        return f"is longer than {TOPIC_MAX_BYTES} bytes"
    levels = topic_filter.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            return f"'#' must be a whole level and the last one, not {level!r}"
        if "+" in level and level != "+":
            return f"'+' must be a whole level, not {level!r}"
    return None
