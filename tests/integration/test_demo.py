"""`silentgate demo --json` as a user runs it: one JSON object per line, then a summary."""

from __future__ import annotations

import json
import os
import signal
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


def test_open_ended_demo_shows_customers_and_ctrl_c_ends_it_with_a_score() -> None:
    """No --duration: the store keeps its customers coming, and Ctrl-C (SIGINT to the whole
    foreground process group, the demo's children included) still ends in order: the daemon
    stops, its last events arrive, the summary is printed."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "demo", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    assert proc.stdout is not None
    events = []
    try:
        for line in proc.stdout:  # until a UHF customer has entered a zone and dwelled
            events.append(json.loads(line))
            kinds = {(e["type"], e.get("subject", {}).get("kind")) for e in events}
            if ("presence.dwell", "customer") in kinds and len(events) > 20:
                break
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
        rest, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    *more, last = [json.loads(line) for line in rest.splitlines()]
    summary = last["summary"]
    assert summary["events"] == len(events) + len(more)
    assert summary["seq_gaps"] == 0
    assert summary["true_visits"] > 0
    assert summary["f1"] >= 0.8
