"""The content cache: what it accepts from the central server, expiry, and surviving a restart."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.rules.content import MAX_PAYLOAD_BYTES, ContentStore, ContentSubscription

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
