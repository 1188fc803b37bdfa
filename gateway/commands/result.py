"""The answer to one command, published QoS 1 on ``P/cmd/{output_id}/result``."""

from __future__ import annotations

import json
from dataclasses import dataclass

from gateway.events import format_ts


@dataclass(frozen=True, slots=True)
class CommandResult:
    output_id: str
    command_id: str | None  # None when the payload was too broken to carry one
    ok: bool
    error: str | None
    ts: float  # unix time the outcome was decided

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
