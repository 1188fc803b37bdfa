"""The content cache: what it accepts from the central server, expiry, and surviving a restart."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.rules.content import (
    BOUNDS,
    MAX_PAYLOAD_BYTES,
    SAVE_INTERVAL_S,
    ContentStore,
    ContentSubscription,
    Snapshot,
)
from tests.waiting import until

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC).timestamp()


class Wall:
    def __init__(self) -> None:
        self.t = NOW

    def __call__(self) -> float:
        return self.t


def store(tmp_path: Path, wall: Wall | None = None) -> ContentStore:
    return ContentStore.open(tmp_path / "outbox.content.json", wall=wall or Wall())


def body(**fields: object) -> bytes:
    return json.dumps(fields).encode()


def test_zone_gtin_and_offer_content_is_looked_up_by_key(tmp_path: Path) -> None:
    s = store(tmp_path)
    assert s.apply("zone/shelf-a", body(title="Fresh bread", price=2.49))
    assert s.apply("gtin/04006381333931", body(name="Gouda"))
    assert s.apply("offer/" + "ab" * 32, body(text="-20% on cheese"))
    assert s.zone("shelf-a") == {"title": "Fresh bread", "price": 2.49}
    assert s.gtin("04006381333931") == {"name": "Gouda"}
    assert s.offer("ab" * 32) == {"text": "-20% on cheese"}
    assert s.zone("shelf-b") is None
    assert len(s) == 3


def test_an_empty_payload_deletes_like_a_cleared_retained_message(tmp_path: Path) -> None:
    s = store(tmp_path)
    s.apply("zone/shelf-a", body(title="x"))
    assert s.apply("zone/shelf-a", b"")
    assert s.zone("shelf-a") is None


@pytest.mark.parametrize(
    ("suffix", "payload"),
    [
        ("zone/shelf-a", b"{not json"),
        ("zone/shelf-a", b"[1, 2]"),
        ("zone/shelf-a", body(title={"nested": 1})),
        ("zone/shelf-a", body(title=True)),
        ("zone/shelf-a", body(id="C0FFEE01")),  # an id is never content
        ("zone/shelf-a", body(customer_id="x")),
        ("zone/shelf-a", body(Title="capitals are not template names")),
        ("zone/shelf-a", body(title="x" * 257)),
        ("zone/shelf-a", body(**{f"k{i}": i for i in range(17)})),
        ("zone/shelf-a", body(title="x", expires_at="2026-11-23T10:00:00")),  # no zone
        ("zone/shelf-a", b"{" + b" " * MAX_PAYLOAD_BYTES + b"}"),
        ("price/shelf-a", body(title="x")),
        ("zone/a/b", body(title="x")),
        ("zone/", body(title="x")),
    ],
)
def test_a_bad_message_is_refused_whole_and_the_last_good_content_stays(
    tmp_path: Path, suffix: str, payload: bytes
) -> None:
    s = store(tmp_path)
    s.apply("zone/shelf-a", body(title="good"))
    assert not s.apply(suffix, payload)
    assert s.zone("shelf-a") == {"title": "good"}
    assert s.refused == 1


def test_content_past_its_expires_at_is_not_used(tmp_path: Path) -> None:
    wall = Wall()
    s = store(tmp_path, wall)
    s.apply("offer/p1", body(text="today only", expires_at="2026-11-23T10:00:30Z"))
    assert s.offer("p1") == {"text": "today only"}
    wall.t = NOW + 30
    assert s.offer("p1") is None


def test_content_survives_a_restart_and_expired_entries_are_not_written(tmp_path: Path) -> None:
    wall = Wall()
    s = store(tmp_path, wall)
    s.apply("zone/shelf-a", body(title="Käse", expires_at="2026-11-24T00:00:00+01:00"))
    s.apply("offer/p1", body(text="gone soon", expires_at="2026-11-23T10:00:10Z"))
    wall.t = NOW + 20
    s.flush()
    assert not (tmp_path / "outbox.content.json.tmp").exists()
    again = store(tmp_path, wall)
    assert again.zone("shelf-a") == {"title": "Käse"}
    assert len(again) == 1
    wall.t = datetime(2026, 11, 23, 23, 0, tzinfo=UTC).timestamp()  # the zone entry expires
    assert again.zone("shelf-a") is None


def test_flush_writes_only_after_changes(tmp_path: Path) -> None:
    s = store(tmp_path)
    s.flush()
    path = tmp_path / "outbox.content.json"
    assert not path.exists()
    s.apply("zone/shelf-a", body(title="x"))
    s.flush()
    assert path.exists()


def test_a_damaged_cache_file_starts_empty(tmp_path: Path) -> None:
    (tmp_path / "outbox.content.json").write_text('{"version": 1, "zone": {"a": 7}}')
    assert len(store(tmp_path)) == 0


def test_the_subscription_routes_content_topics_only(tmp_path: Path) -> None:
    s = store(tmp_path)
    sub = ContentSubscription(s, "silentcommerce/v1/s1/g1")
    assert sub.topic_filter == "silentcommerce/v1/s1/g1/content/#"
    assert sub.receive("silentcommerce/v1/s1/g1/content/zone/shelf-a", body(title="x"))
    assert not sub.receive("silentcommerce/v1/s1/g1/cmd/disp", body(title="y"))
    assert sub.receive("silentcommerce/v1/s1/g1/content/bogus/x", body(title="y"))  # refused
    assert s.zone("shelf-a") == {"title": "x"}
    assert (s.applied, s.refused) == (1, 1)


def test_a_cache_that_cannot_be_written_keeps_the_content_in_memory(tmp_path: Path) -> None:
    s = ContentStore.open(tmp_path / "missing-dir" / "outbox.content.json", wall=Wall())
    s.apply("zone/shelf-a", body(title="x"))
    s.flush()  # logs and carries on
    assert s.zone("shelf-a") == {"title": "x"}


def test_each_kind_is_bounded_in_entries_and_bytes_oldest_first(tmp_path: Path) -> None:
    s = store(tmp_path)
    s.apply("zone/shelf-a", body(title="stays"))
    bound = BOUNDS["offer"]
    for i in range(bound.entries + 10):
        assert s.apply(f"offer/p{i}", body(text="x"))
    assert s.offer("p0") is None  # the oldest went first
    assert s.offer(f"p{bound.entries + 9}") == {"text": "x"}
    assert s.zone("shelf-a") == {"title": "stays"}  # offers never push out zones
    big = body(text="y" * 250, more="z" * 250, again="w" * 250)
    for i in range(bound.bytes // len(big) + 10):
        s.apply(f"offer/b{i}", big)
    assert s.size <= sum(b.bytes for b in BOUNDS.values())
    assert sum(1 for i in range(bound.entries + 10) if s.offer(f"p{i}")) == 0
    assert s.evicted > 0


def test_a_cache_file_is_loaded_within_the_same_bounds_as_messages(tmp_path: Path) -> None:
    good = {"data": {"title": "ok"}, "expires": None}
    saved = {
        "version": 1,
        "zone": {
            "a": good,
            "b": {"data": {"id": "C0FFEE"}, "expires": None},  # an id is never content
            "c": {"data": {"title": "x" * 300}, "expires": None},  # too long
            "d": {"data": {"title": "ok"}, "expires": "tomorrow"},
            "e/f": good,  # not a key a topic can have
        },
        "offer": {f"p{i}": good for i in range(BOUNDS["offer"].entries + 5)},
    }
    (tmp_path / "outbox.content.json").write_text(json.dumps(saved))
    s = store(tmp_path)
    assert s.zone("a") == {"title": "ok"}
    assert [s.zone(k) for k in "bcd"] == [None, None, None]
    assert len(s) == 1 + BOUNDS["offer"].entries


@pytest.mark.parametrize(
    "text",
    ['{"version": 1, "zone": ' + "[" * 1000, '{"zone": {"a": {"data": {"p": 1e999}}}}', "[]"],
)
def test_a_hostile_cache_file_starts_empty(tmp_path: Path, text: str) -> None:
    (tmp_path / "outbox.content.json").write_text(text)
    assert len(store(tmp_path)) == 0


async def test_the_cache_is_written_on_a_thread_from_a_snapshot(tmp_path: Path) -> None:
    s = store(tmp_path)
    s.apply("zone/shelf-a", body(title="first"))
    path = tmp_path / "outbox.content.json"
    writes: list[tuple[int, str]] = []  # (thread, the file as that write left it)
    write = s._write_file

    def spy(target: Path, snapshot: Snapshot) -> None:
        s.apply("zone/shelf-a", body(title="changed while writing"))  # after the snapshot
        write(target, snapshot)
        writes.append((threading.get_ident(), path.read_text()))

    s._write_file = spy  # type: ignore[method-assign]  # observes the writer
    task = asyncio.create_task(s.run())
    await until(lambda: writes, timeout=SAVE_INTERVAL_S + 5)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    thread, written = writes[0]
    assert thread != threading.get_ident()  # not the event loop's
    assert '"first"' in written
    assert "changed while writing" not in written
    assert "changed while writing" in path.read_text()  # the write at shutdown has it
