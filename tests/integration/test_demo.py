"""`silentgate demo --json` as a user runs it: one JSON object per line, then a summary."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.broker, pytest.mark.slow, pytest.mark.timeout(120)]


@pytest.mark.parametrize("broker", ["default", "amqtt"])
def test_demo_prints_events_as_json_lines_and_a_scored_summary(broker: str) -> None:
    env = dict(os.environ)
    if broker == "amqtt":  # what a machine without mosquitto gets
        env["SILENTGATE_TEST_BROKER"] = "amqtt"
    out = subprocess.run(
        [sys.executable, "-m", "gateway", "demo", "--duration", "15", "--json"],
        capture_output=True, text=True, timeout=100, env=env, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    *events, last = lines
    summary = last["summary"]
    assert summary["events"] == len(events) > 5
    assert summary["seq_gaps"] == 0
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    assert all(e["schema"] == "silentcommerce.event/v1" for e in events)
    devices = {e["device"] for e in events if e["type"] == "device.status" and e["state"] == "ok"}
    assert {"door", "cards", "shelf-a-display"} <= devices
    assert any(e["type"] == "presence.enter" for e in events)
    assert summary["true_visits"] > 0
    assert summary["f1"] >= 0.8
    assert summary["enter_latency_p50"] < 1.0  # events within a second of the tag's entry
