"""Consumers land a gateway's stream exactly once, through a consumer's SIGKILL and a broker
restart: a real ``silentgate run`` publishing 10,000 events, real mosquitto (with persistence,
as a production broker), ``silentgate central run`` processes."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
from central_rig import ConsumerProcess, fill_outbox, gateway_config
from harness import start_daemon

from bench.throwaway_pg import throwaway_database
from central.store import Store, open_store
from demo.broker import BrokerProcess, find_mosquitto

EVENTS = 10_000
GRACE_S = 8.0  # longer than a member's restart takes; a gap older than this is reported
pytestmark = [
    pytest.mark.slow,
    pytest.mark.broker,
    pytest.mark.timeout(150),
    pytest.mark.skipif(find_mosquitto() is None, reason="needs mosquitto (shared subscriptions)"),
]


def stored(store: Store) -> int:
    return int(store.query("SELECT count(*) FROM events")[0][0])


def watched_to(store: Store) -> int:
    found = store.query("SELECT contiguous_to FROM seq_lines")
    return int(found[0][0]) if found else 0


def wait_until(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def land_through_faults(tmp: Path, db_url: str, members: int, *, batch: int) -> Store:
    """Fill, start, kill the last member at 25 % and restart it a second later (as systemd
    would), restart the broker at 50 %; wait for every seq. Returns the store, open."""
    fill_outbox(tmp / "outbox.db", EVENTS)
    with BrokerProcess("mosquitto", persistent=True) as broker:
        group = [
            ConsumerProcess(tmp, f"member-{i}", broker.url, db_url, grace_s=GRACE_S).start()
            for i in range(members)
        ]
        store = open_store(db_url)
        started = time.monotonic()
        daemon = start_daemon(gateway_config(tmp, broker.url, batch=batch, inflight=8))
        try:
            wait_until(lambda: stored(store) >= EVENTS // 4, 60, "a quarter")
            group[-1].kill()
            killed_at = stored(store)
            time.sleep(1.0)
            group[-1].start()
            wait_until(lambda: stored(store) >= EVENTS // 2, 60, "half")
            restarted_at = stored(store)
            restart_under(broker, daemon, group)
            wait_until(lambda: stored(store) >= EVENTS, 60, "every event")
            # The loss watch has looked at every seq (its line starts GRACE_S after the first).
            wait_until(lambda: watched_to(store) >= EVENTS, 60, "the loss watch")
            print(
                f"\nkilled a member at {killed_at}, restarted the broker at {restarted_at}, "
                f"{stored(store)} stored after {time.monotonic() - started:.1f} s"
            )
        finally:
            daemon.terminate()
            daemon.communicate(timeout=20)
            for member in group:
                member.stop()
        return store


def restart_under(
    broker: BrokerProcess, daemon: subprocess.Popen[bytes], group: list[ConsumerProcess]
) -> None:
    """Restart the broker with the gateway paused until the members are back.

    mosquitto (2.0.11) keeps a persistent session's queued messages across a restart but not
    its shared subscriptions: until a member subscribes again, the broker acknowledges the
    gateway's messages and hands them to no one (docs/consumers.md). The pause keeps that
    window out of this test, which is about what the consumers do; the gateway's connection
    still breaks, and what it had in flight is sent again when it runs on.
    """
    before = [m.connections() for m in group]
    daemon.send_signal(signal.SIGSTOP)
    try:
        broker.restart()
        wait_until(
            lambda: all(m.connections() > n for m, n in zip(group, before, strict=True)),
            30, "the members' reconnection",
        )  # fmt: skip
    finally:
        daemon.send_signal(signal.SIGCONT)


def assert_every_seq_once(store: Store) -> None:
    count, distinct, top = store.query(
        "SELECT count(*), count(DISTINCT seq), max(seq) FROM events"
    )[0]
    assert count == distinct == top >= EVENTS
    assert store.query("SELECT count(*) FROM seq_conflicts")[0][0] == 0
    assert (
        store.query("SELECT first_seq, last_seq FROM seq_gaps WHERE reported_at IS NOT NULL") == []
    )
    # The gateway's retained status, recorded by the plain subscription of each member.
    assert ("online",) in store.query("SELECT state FROM gateway_status")


def test_sqlite_with_one_consumer_holds_every_seq_once(tmp_path: Path) -> None:
    store = land_through_faults(tmp_path, f"sqlite:///{tmp_path / 'central.db'}", 1, batch=0)
    assert_every_seq_once(store)
    store.close()


def test_three_postgresql_members_hold_every_seq_once(tmp_path: Path) -> None:
    with throwaway_database() as url:
        store = land_through_faults(tmp_path, url, 3, batch=0)
        assert_every_seq_once(store)
        store.close()
