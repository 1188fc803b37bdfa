"""The command ledger: replay protection on a clock that never steps, inside the outbox's size
limit, written off the event loop, and refusing (never guessing) when storage cannot record.

Clocks are injected: ``Clocks.wall`` is what the Pi believes the date is, ``Clocks.mono`` its
monotonic clock, which starts again near zero at every boot. A restart is a new Outbox and
ledger on the same file.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.commands.ledger import KEEP_S, CommandLedger
from gateway.commands.router import CommandRouter
from gateway.events.model import AnyEvent
from gateway.outbox import Outbox
from tests.gateway.commands.test_commands import Recorder, switch
from tests.gateway.outbox.test_outbox_limits import enter
from tests.gateway.outbox.test_outbox_storage import locked

NOW: float = 1_795_000_000.0  # 2026-11-18
BOOTED_IN_1970: float = 86_400.0  # no RTC, no NTP yet: 1970-01-02


@dataclass
class Clocks:
    wall: float
    mono: float = 100.0


def ledger(outbox: Outbox, clocks: Clocks, keep_s: float = KEEP_S) -> CommandLedger:
    return CommandLedger(
        outbox, keep_s=keep_s, monotonic=lambda: clocks.mono, wall=lambda: clocks.wall
    )


def router(outbox: Outbox, clocks: Clocks, relay: Recorder) -> CommandRouter:
    # The manual wall clock counts as synchronised: expires_at is judged by it.
    return CommandRouter(
        ledger(outbox, clocks),
        {"relay-1": relay},
        clock=lambda: clocks.wall,
        synchronised=lambda: True,
    )


async def test_a_command_run_while_the_clock_said_1970_stays_a_replay_after_ntp_and_a_restart(
    tmp_path: Path,
) -> None:
    clocks, relay = Clocks(wall=BOOTED_IN_1970, mono=40.0), Recorder()
    outbox = Outbox.open(tmp_path / "o.db")
    assert (await router(outbox, clocks, relay).handle("relay-1", switch("c-1"))).ok
    outbox.close()
    clocks.wall, clocks.mono = NOW, 12.0  # NTP set the clock; the Pi restarted
    outbox = Outbox.open(tmp_path / "o.db")
    again = await router(outbox, clocks, relay).handle("relay-1", switch("c-1"))
    assert again.error is not None
    assert "replayed" in again.error
    assert len(relay.done) == 1
    outbox.close()


async def test_entries_live_keep_s_of_running_time_whichever_way_the_wall_clock_steps(
    tmp_path: Path,
) -> None:
    clocks = Clocks(wall=NOW, mono=0.0)
    outbox = Outbox.open(tmp_path / "o.db")
    book = ledger(outbox, clocks, keep_s=100.0)
    assert await book.claim("c-1", "relay-1") is None
    clocks.wall -= 3600.0  # stepped back an hour
    clocks.mono += 50.0
    await book.prune()
    assert await book.count() == 1
    clocks.wall += 7 * 86400.0  # and a week ahead
    assert await book.count() == 1
    clocks.mono += 60.0  # 110 s of running time since the claim
    await book.prune()
    assert await book.count() == 0
    outbox.close()


async def test_downtime_does_not_count_towards_keep_s(tmp_path: Path) -> None:
    clocks = Clocks(wall=NOW, mono=500.0)
    outbox = Outbox.open(tmp_path / "o.db")
    book = ledger(outbox, clocks, keep_s=100.0)
    assert await book.claim("c-1", "relay-1") is None
    clocks.mono += 80.0
    assert await book.claim("c-2", "relay-1") is None
    outbox.close()
    clocks.wall, clocks.mono = NOW + 30 * 86400.0, 3.0  # a month off, then booted again
    outbox = Outbox.open(tmp_path / "o.db")
    book = ledger(outbox, clocks, keep_s=100.0)
    await book.prune()
    assert await book.count() == 2
    assert await book.claim("c-1", "relay-1") == "running"
    clocks.mono += 50.0  # c-1 has now run 130 s of ledger time, c-2 50 s
    await book.prune()
    assert await book.count() == 1
    assert await book.claim("c-2", "relay-1") == "running"
    outbox.close()


async def test_an_expired_command_is_not_recorded_and_a_resend_is_refused_as_expired_again(
    tmp_path: Path,
) -> None:
    outbox = Outbox.open(tmp_path / "o.db")
    clocks = Clocks(wall=NOW)
    late = switch("c-late", expires_at="2026-01-01T00:00:00Z")
    first = await router(outbox, clocks, Recorder()).handle("relay-1", late)
    again = await router(outbox, clocks, Recorder()).handle("relay-1", late)
    assert [first.error is not None and "expired" in first.error, again.error] == [
        True,
        first.error,
    ]
    assert await ledger(outbox, clocks).count() == 0
    outbox.close()


LIMIT = 1 << 20  # the smallest storage.max_bytes


async def test_a_flood_of_command_ids_stays_inside_max_bytes_and_leaves_room_for_events(
    tmp_path: Path,
) -> None:
    path = tmp_path / "o.db"
    outbox = Outbox.open(path, max_bytes=LIMIT, synchronous="normal")
    relay = Recorder()
    flood = router(outbox, Clocks(wall=NOW), relay)
    ids = [f"{n:08d}-{'x' * 110}" for n in range(8000)]  # as long as command_id may be
    results = [await flood.handle("relay-1", switch(command_id)) for command_id in ids]
    refused = [r.error for r in results if not r.ok]
    assert refused
    assert all(e is not None and e.startswith("storage unavailable: storage full") for e in refused)
    assert len(relay.done) == await ledger(outbox, Clocks(wall=NOW)).count()
    # The ledger stopped at the high-water mark: presence events still have room.
    more: list[AnyEvent] = [enter(n) for n in range(50)]
    assert len(outbox.append(more)) == 50
    outbox.close()
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert path.stat().st_size <= LIMIT


async def test_a_claim_waiting_for_the_disk_does_not_hold_up_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    outbox = Outbox.open(path)
    relay = Recorder()
    with locked(path):  # the claim's commit waits, as it would for a slow fsync
        handling = asyncio.create_task(
            router(outbox, Clocks(wall=NOW), relay).handle("relay-1", switch("c-1"))
        )
        await asyncio.sleep(0.2)  # on the loop, a claim would block right here, then fail
        assert not handling.done()
    assert (await handling).ok
    outbox.close()


async def test_storage_that_cannot_record_a_claim_refuses_the_command(tmp_path: Path) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("not a directory\n")
    outbox = Outbox.open(blocker / "o.db")
    relay = Recorder()
    result = await router(outbox, Clocks(wall=NOW), relay).handle("relay-1", switch("c-1"))
    assert result.error is not None
    assert result.error.startswith("storage unavailable: storage failed: cannot open")
    assert relay.done == []
    outbox.close()


async def test_a_replay_is_still_recognised_while_storage_is_full(tmp_path: Path) -> None:
    outbox = Outbox.open(tmp_path / "o.db", max_bytes=64 << 10)
    relay, clocks = Recorder(), Clocks(wall=NOW)
    assert (await router(outbox, clocks, relay).handle("relay-1", switch("c-1"))).ok
    while not outbox.backlog().held:
        outbox.append([enter(n) for n in range(20)])
    replay = await router(outbox, clocks, relay).handle("relay-1", switch("c-1"))
    fresh = await router(outbox, clocks, relay).handle("relay-1", switch("c-2"))
    assert replay.error is not None
    assert "replayed" in replay.error
    assert fresh.error is not None
    assert fresh.error.startswith("storage unavailable: storage full")
    assert len(relay.done) == 1
    outbox.close()


async def test_an_outcome_that_cannot_be_recorded_leaves_the_claim_standing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "o.db"
    outbox = Outbox.open(path, busy_timeout_s=0.05)
    book = ledger(outbox, Clocks(wall=NOW))
    assert await book.claim("c-1", "relay-1") is None
    with locked(path):
        await book.settle("c-1", "ok")  # logged, not raised
    assert "cannot record the outcome of command c-1" in caplog.text
    outbox.retry()  # the lock is gone: storage is ok again
    assert outbox.health().state == "ok"
    assert await book.claim("c-1", "relay-1") == "running"
    outbox.close()
