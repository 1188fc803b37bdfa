"""What a message must be to be stored; everything else is one rejection with a reason."""

from __future__ import annotations

import json

import pytest
from sample_events import PREFIX, batch_topic, event, payload, topic_of

from central.records import Rejected, classify, event_rows, status_row


def rows(topic: str, body: bytes) -> list[object]:
    return list(event_rows(classify(topic, PREFIX), body))


def code(topic: str, body: bytes) -> str:
    with pytest.raises(Rejected) as caught:
        rows(topic, body)
    return caught.value.code


def test_a_single_event_becomes_one_row_with_its_payload_unchanged() -> None:
    doc = event(7)
    body = payload(doc)
    (row,) = event_rows(classify(topic_of(doc), PREFIX), body)
    assert (row.id, row.seq, row.zone, row.subject_kind) == (doc["id"], 7, "shelf-a", "customer")
    assert row.payload == body.decode()
    assert row.ts.isoformat() == "2026-11-23T10:00:00+00:00"


def test_a_batch_becomes_its_rows_in_order() -> None:
    docs = [event(seq) for seq in (3, 4, 5)]
    found = event_rows(classify(batch_topic(), PREFIX), payload(docs))
    assert [r.seq for r in found] == [3, 4, 5]
    assert [json.loads(r.payload) for r in found] == docs


BAD_EVENTS = [
    (b"{not json", "malformed"),
    (b"[" * 100 + b"]" * 100, "too_deep"),
    (b"1" * 70_000, "too_large"),
    (payload(event(1, zone="a\u0000b")), "value"),
    (payload(event(0)), "schema"),
    (payload(event(True)), "schema"),
    (payload(event(10**20)), "number"),
    (payload(event(1, id=5)), "schema"),
    (payload(event(1, id="x" * 65)), "schema"),
    (payload(event(1, id="\ud800")), "schema"),
    (payload(event(1, ts="yesterday")), "schema"),
    (payload(event(1, zone="has space")), "schema"),
    (payload(event(1, subject=[1])), "schema"),
    (payload(event(1, gateway="gw-other")), "topic"),
    (payload([1, 2]), "schema"),
]


# Ids by position: the bodies hold fresh event ids, and two xdist workers must collect the same
# test names (pytest 8 names a bytes parameter by its value).
@pytest.mark.parametrize(
    ("body", "expected"), BAD_EVENTS, ids=[f"{i}-{code}" for i, (_, code) in enumerate(BAD_EVENTS)]
)
def test_a_bad_event_message_is_rejected_with_its_reason(body: bytes, expected: str) -> None:
    assert code(topic_of(event(1)), body) == expected


def test_an_event_on_another_types_topic_is_rejected() -> None:
    assert code(topic_of(event(1, type="item.pickup")), payload(event(1))) == "topic"


def test_a_batch_is_refused_whole_when_one_element_is_bad() -> None:
    assert code(batch_topic(), payload([event(1), event("2")])) == "schema"
    assert code(batch_topic(), b"[]") == "schema"


@pytest.mark.parametrize("suffix", ["presence/enter", "presence.enter"])
def test_an_event_is_taken_on_its_level_topic_and_on_the_dotted_one(suffix: str) -> None:
    """Gateways publish on ``event/presence/enter``; one configured with ``event_topics =
    "dotted"`` (a transition) on ``event/presence.enter``."""
    topic = classify(f"{PREFIX}/store-042/gw-1/event/{suffix}", PREFIX)
    assert (topic.kind, topic.type) == ("event", "presence.enter")


@pytest.mark.parametrize(
    "topic", ["other/x/y/events", f"{PREFIX}/s/g/event", f"{PREFIX}/s/g/cmd/x"]
)
def test_topics_outside_the_contract_are_rejected(topic: str) -> None:
    with pytest.raises(Rejected) as caught:
        classify(topic, PREFIX)
    assert caught.value.code == "topic"


def test_a_status_gives_state_and_time_and_an_empty_one_nothing() -> None:
    topic = classify(f"{PREFIX}/store-042/gw-1/status", PREFIX)
    found = status_row(topic, b'{"state": "offline", "ts": "2026-11-23T10:00:00.000Z"}')
    assert found is not None
    assert (found.store, found.gateway, found.state) == ("store-042", "gw-1", "offline")
    assert status_row(topic, b"") is None
    with pytest.raises(Rejected):
        status_row(topic, b'{"state": "maybe", "ts": "2026-11-23T10:00:00.000Z"}')
