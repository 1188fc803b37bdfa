"""The answer to one command, published QoS 1 on ``P/cmd/{output_id}/result``.

The output id comes from the topic the command arrived on, so it is the sender's text: a result
can be published only where ``P/cmd/{output_id}/result`` is itself a valid MQTT topic name (at
most 65,535 bytes of UTF-8, no wildcard, no NUL; MQTT 5 section 1.5.4 and 4.7). Any other result
is counted as unanswerable and logged instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Final

from gateway.events.model import format_ts

MAX_TOPIC_BYTES: Final = 65_535  # a UTF-8 string's 16-bit length prefix (MQTT 5, 1.5.4)


@dataclass(frozen=True, slots=True)
class CommandResult:
    output_id: str
    command_id: str | None  # None when the payload was too broken to carry one
    ok: bool
    error: str | None
    ts: float  # unix time the outcome was decided
    refused: bool = False  # refused before execution (not part of the message)

    def topic(self, base: str) -> str:
        return f"{base}/cmd/{self.output_id}/result"

    def to_json(self) -> str:
        body = {
            "command_id": self.command_id,
            "ok": self.ok,
            "error": self.error,
            "ts": format_ts(self.ts),
        }
        return json.dumps(body, separators=(",", ":"))


def valid_topic(topic: str) -> bool:
    """Whether ``topic`` may be published to: a non-empty MQTT topic name within the limits."""
    if not topic or any(c in topic for c in "+#\0"):
        return False
    try:
        return len(topic.encode()) <= MAX_TOPIC_BYTES
    except UnicodeEncodeError:  # a lone surrogate has no UTF-8 form
        return False
