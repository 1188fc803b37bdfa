"""`silentgate demo --json` as a user runs it: one JSON object per line, then a summary."""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
    assert "attribution_accuracy" in summary  # pickups scored against who made them
    assert summary["enter_latency_p50"] < 1.0  # events within a second of the tag's entry


def test_open_ended_demo_shows_customers_and_ctrl_c_ends_it_with_a_score() -> None:
    """No --duration: the store keeps its customers coming, and Ctrl-C (SIGINT to the whole
    foreground process group, the demo's children included) still ends in order: the daemon
    stops, its last events arrive, the summary is printed."""
    proc = _open_ended_demo()
    try:
        events = _events_until(proc, _a_customer_dwelled)
        os.killpg(proc.pid, signal.SIGINT)
        rest, err = proc.communicate(timeout=60)
    finally:
        _kill(proc)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    *more, last = [json.loads(line) for line in rest.splitlines()]
    summary = last["summary"]
    assert summary["events"] == len(events) + len(more)
    assert summary["seq_gaps"] == 0
    assert summary["true_visits"] > 0
    assert summary["f1"] >= 0.8
    assert "attribution_accuracy" in summary  # pickups scored against who made them


def test_a_killed_demo_takes_its_daemon_and_broker_with_it() -> None:
    """The broker and the daemon run in their own sessions (so that Ctrl-C reaches the demo
    first); a demo killed outright must not leave them running."""
    proc = _open_ended_demo()
    try:
        _events_until(proc, lambda events: len(events) >= 3)
        children = _children(proc.pid)
        assert len(children) == 2, children  # the broker and the daemon
        proc.kill()
        proc.wait(10)
        deadline = time.monotonic() + 20.0
        while (alive := [pid for pid in children if _running(pid)]) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in alive:  # the failure below is enough: nothing left behind
            os.kill(pid, signal.SIGKILL)
    finally:
        _kill(proc)
    assert alive == [], f"still running 20 s after the demo was killed: {alive}"


def _open_ended_demo() -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "gateway", "demo", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip


def _a_customer_dwelled(events: list[dict[str, Any]]) -> bool:
    kinds = {(e["type"], e.get("subject", {}).get("kind")) for e in events}
    return ("presence.dwell", "customer") in kinds and len(events) > 20


def _events_until(
    proc: subprocess.Popen[str],
    done: Callable[[list[dict[str, Any]]], bool],
    within_s: float = 90.0,
) -> list[dict[str, Any]]:
    """The demo's JSON lines until ``done``; past ``within_s``, a failure that shows what the
    demo said on stderr (its progress and any reason it gives) instead of a bare timeout."""
    assert proc.stdout is not None
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + within_s
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while not done(events):
            if time.monotonic() > deadline or proc.poll() is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                _, err = proc.communicate(timeout=10)
                pytest.fail(f"{len(events)} events, not enough after {within_s} s; stderr:\n{err}")
            if selector.select(timeout=1.0):
                line = proc.stdout.readline()
                if line:
                    events.append(json.loads(line))
    return events


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie waits for whoever reaps it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _kill(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()
