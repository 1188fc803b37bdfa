"""Gateway requests through ``RequestChannel``: the checks of output commands, one response per
request with its id, at most once across a restart (the ledger in a real outbox)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from gateway.commands.ledger import CommandLedger
from gateway.outbox import Outbox
from gateway.uplink.requests import MAX_PAYLOAD_BYTES, RequestChannel, Response
from tests.waiting import background, until

BASE = "silentcommerce/v1/store-042/gw-1"


class Stand:
    """The daemon's side of requests (the seam ``gateway.uplink.requests.Gateway``)."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.reloaded = 0

    def info(self) -> dict[str, object]:
        return {"store": "store-042"}

    def health(self) -> dict[str, object]:
        return {"state": "online"}

    def reload(self) -> tuple[list[str], Callable[[], None] | None]:
        if self.problems:
            return self.problems, None
        return [], self._start

    def _start(self) -> None:
        self.reloaded += 1


class Rig:
    def __init__(self, outbox: Outbox) -> None:
        self.stand = Stand()
        self.channel = RequestChannel(
            self.stand, CommandLedger(outbox), BASE, synchronised=lambda: True
        )

    def send(self, name: str, payload: bytes | dict[str, object]) -> None:
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.channel.receive(f"{BASE}/request/{name}", raw)

    async def answers(self, n: int) -> list[Response]:
        responses = self.channel._responses
        await until(lambda: len(responses) >= n)
        return [responses.popleft() for _ in range(n)]


@pytest.fixture
async def outbox(tmp_path: Path) -> AsyncIterator[Outbox]:
    box = Outbox.open(tmp_path / "o.db")
    yield box
    box.close()


async def test_info_health_and_log_level_are_answered_with_their_id(outbox: Outbox) -> None:
    rig = Rig(outbox)
    level = logging.getLogger().level
    async with background(rig.channel.run()):
        rig.send("info", {"id": "r1"})
        rig.send("health", {"id": "r2"})
        rig.send("log_level", {"id": "r3", "level": "DEBUG"})
        got = await rig.answers(3)
        assert logging.getLogger().level == logging.DEBUG
    logging.getLogger().setLevel(level)
    assert [(r.name, r.id, r.ok, r.data) for r in got] == [
        ("info", "r1", True, {"store": "store-042"}),
        ("health", "r2", True, {"state": "online"}),
        ("log_level", "r3", True, {"level": "DEBUG"}),
    ]
    assert got[0].topic(BASE) == f"{BASE}/response/info"
    body = json.loads(got[0].to_json())
    assert set(body) == {"id", "ok", "error", "ts", "data"}


@pytest.mark.parametrize(
    ("name", "payload", "code", "request_id"),
    [
        ("info", b"{not json", "malformed", None),
        ("info", b"[1]", "object", None),
        ("info", b"x" * (MAX_PAYLOAD_BYTES + 1), "too_large", None),
        ("info", {"id": "r1", "extra": 1}, "schema", "r1"),
        ("info", {"id": "bad id with spaces"}, "schema", "bad id with spaces"),
        ("log_level", {"id": "r2", "level": "debug"}, "schema", "r2"),
        ("log_level", {"id": "r3", "level": 10}, "schema", "r3"),
        ("health", {"id": "r4", "expires_at": "2020-01-01T00:00:00Z"}, "expired", "r4"),
    ],
)
async def test_what_a_command_would_be_refused_for_a_request_is_too(
    outbox: Outbox, name: str, payload: bytes | dict[str, object], code: str,
    request_id: str | None,
) -> None:  # fmt: skip
    rig = Rig(outbox)
    rig.send(name, payload)
    [refusal] = await rig.answers(1)
    assert (refusal.ok, refusal.id) == (False, request_id)
    assert rig.channel.refused_by == {code: 1}


async def test_an_id_is_acted_on_once_across_a_restart(outbox: Outbox) -> None:
    first = Rig(outbox)
    async with background(first.channel.run()):
        first.send("reload", {"id": "once"})
        [done] = await first.answers(1)
        first.send("reload", {"id": "once"})  # refused from memory
        [again] = await first.answers(1)
    assert (done.ok, done.data) == (True, {"reloading": True})
    assert done.after is not None
    done.after()  # the publisher runs it once the response is out
    assert first.stand.reloaded == 1
    assert (again.ok, again.error) == (False, "replayed: this id was already seen")
    restarted = Rig(outbox)  # a new daemon on the same outbox: the ledger remembers
    async with background(restarted.channel.run()):
        restarted.send("reload", {"id": "once"})
        [late] = await restarted.answers(1)
    assert (late.ok, late.error) == (False, "replayed: this id was already seen (ok)")
    assert restarted.stand.reloaded == 0


async def test_a_reload_of_a_config_with_problems_answers_them(outbox: Outbox) -> None:
    rig = Rig(outbox)
    rig.stand.problems = ["gw.toml:2: site.store: 'Store 42' must match ^[a-z0-9][a-z0-9-]{0,63}$"]
    async with background(rig.channel.run()):
        rig.send("reload", {"id": "r9"})
        [refused] = await rig.answers(1)
    assert refused.ok is False
    assert refused.error == "config refused, still running on the previous one"
    assert refused.data == {"problems": rig.stand.problems}
    assert refused.after is None


async def test_other_topics_and_unknown_names_are_not_requests(outbox: Outbox) -> None:
    rig = Rig(outbox)
    rig.send("nope", {"id": "r1"})
    rig.channel.receive(f"{BASE}/request/info/deeper", b'{"id": "r2"}')
    rig.channel.receive(f"{BASE}/cmd/info", b'{"id": "r3"}')
    assert not rig.channel._responses  # no answer on a topic nobody asked for
    assert rig.channel.refused_by == {"unknown_request": 2}
