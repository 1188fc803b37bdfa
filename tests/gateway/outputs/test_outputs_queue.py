"""The queue every output session shares: order, deadlines, retries, follow-ups.

A fake output stands in for the device here (its attempts succeed or fail as the test says);
the sessions against the real simulators are in the other ``test_outputs_*`` files.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import FrameError, TransportError
from drivers.openepaperlink import get_db
from drivers.serial_display import Clear, ShowText
from gateway.commands import AnyCommand, DisplayShow, OutputError, OutputKind, RelaySwitch
from gateway.config.outputs import SerialDisplayOutput
from gateway.outputs import DisplaySession, OutputSession, RetryableError
from gateway.outputs.base import MAX_QUEUED, Planned
from gateway.outputs.http import HttpConnection
from tests.waiting import background

pytestmark = pytest.mark.timeout(20)


class FakeOutput(OutputSession[None, int]):
    """Channel numbers as actions; ``outcomes[channel]`` lists what its attempts raise."""

    def __init__(self, *, deadline_s: float = 2.0, attempt_s: float = 0.01) -> None:
        super().__init__("fake", lambda *_: None, deadline_s=deadline_s)
        self.outcomes: dict[int, list[Exception]] = {}
        self.attempts: list[tuple[int, float, float]] = []  # channel, start, end
        self.attempt_s = attempt_s

    @property
    def kind(self) -> OutputKind:
        return "relay"

    def plan(self, command: AnyCommand) -> Planned[int]:
        assert isinstance(command, RelaySwitch)
        return Planned(command.channel, f"channel {command.channel}")

    async def _open(self) -> None:
        return None

    def _close(self, conn: None) -> None:
        pass

    async def _hello(self, conn: None) -> None:
        pass

    async def _attempt(self, conn: None, action: int) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.sleep(self.attempt_s)
        self.attempts.append((action, start, loop.time()))
        outcomes = self.outcomes.get(action)
        if outcomes:
            raise outcomes.pop(0)


def switch(channel: int, expires_at: dt.datetime | None = None) -> RelaySwitch:
    return RelaySwitch(
        command_id=f"c-{channel}", action="switch", channel=channel, on=True, expires_at=expires_at
    )


async def test_actions_run_one_at_a_time_in_order() -> None:
    fake = FakeOutput()
    async with background(fake.run()):
        await asyncio.gather(*(fake.execute(switch(n)) for n in range(1, 9)))
    channels = [a[0] for a in fake.attempts]
    assert channels == list(range(1, 9))
    assert all(prev[2] <= nxt[1] for prev, nxt in itertools.pairwise(fake.attempts))


async def test_a_retryable_failure_is_retried_with_growing_pauses() -> None:
    fake = FakeOutput(attempt_s=0.0)
    fake.outcomes[1] = [RetryableError("busy")] * 3
    async with background(fake.run()):
        await fake.execute(switch(1))
    starts = [start for _ch, start, _end in fake.attempts]
    pauses = [b - a for a, b in itertools.pairwise(starts)]
    assert len(starts) == 4
    assert [p >= least for p, least in zip(pauses, (0.05, 0.1, 0.2), strict=True)] == [True] * 3


async def test_a_final_refusal_is_not_retried_and_the_queue_goes_on() -> None:
    fake = FakeOutput()
    fake.outcomes[1] = [OutputError("fake: refused")]
    async with background(fake.run()):
        first = asyncio.create_task(fake.execute(switch(1)))
        await asyncio.sleep(0)  # queued first
        await fake.execute(switch(2))
        with pytest.raises(OutputError, match=r"^fake: refused$"):
            await first
    assert [a[0] for a in fake.attempts] == [1, 2]


async def test_the_deadline_ends_the_retries_with_the_last_reason() -> None:
    fake = FakeOutput(deadline_s=0.3)
    fake.outcomes[1] = [RetryableError("NAK BUSY")] * 100
    async with background(fake.run()):
        with pytest.raises(
            OutputError, match=r"channel 1 not done by its deadline \(\d+ attempts\)"
        ):
            await fake.execute(switch(1))
        tries = len(fake.attempts)
        await asyncio.sleep(0.2)
    assert len(fake.attempts) == tries  # nothing more once the caller was told


async def test_expires_at_shortens_the_deadline() -> None:
    fake = FakeOutput(deadline_s=5.0)
    fake.outcomes[1] = [RetryableError("no answer")] * 100
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=0.2)
    loop = asyncio.get_running_loop()
    async with background(fake.run()):
        started = loop.time()
        with pytest.raises(OutputError, match="no answer"):
            await fake.execute(switch(1, expires_at=soon))
    assert loop.time() - started < 1.0


async def test_a_lost_connection_keeps_the_action_for_the_next_one() -> None:
    fake = FakeOutput()
    fake.outcomes[1] = [TransportError("port gone")]
    pending = asyncio.create_task(fake.execute(switch(1)))
    with pytest.raises(TransportError):
        await fake.run()
    assert not pending.done()
    async with background(fake.run()):  # what the supervisor does next
        await pending
    assert [a[0] for a in fake.attempts] == [1, 1]


async def test_an_action_whose_caller_left_is_skipped() -> None:
    fake = FakeOutput(attempt_s=0.1)
    first = asyncio.create_task(fake.execute(switch(1)))
    second = asyncio.create_task(fake.execute(switch(2)))
    await asyncio.sleep(0)
    second.cancel()
    async with background(fake.run()):
        await first
        await asyncio.sleep(0.15)
    assert [a[0] for a in fake.attempts] == [1]


async def test_an_output_that_is_down_does_not_collect_commands_without_bound() -> None:
    fake = FakeOutput()
    waiting = [asyncio.create_task(fake.execute(switch(1))) for _ in range(MAX_QUEUED)]
    await asyncio.sleep(0)
    with pytest.raises(OutputError, match=f"{MAX_QUEUED} actions already waiting"):
        await fake.execute(switch(2))
    for task in waiting:
        task.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)


def test_a_display_duration_beyond_the_frame_becomes_a_follow_up_clear() -> None:
    config = SerialDisplayOutput(id="d", driver="serial-display", port="/dev/null")
    session = DisplaySession(config, lambda *_: None)
    short = DisplayShow(command_id="a", action="show", line=2, text="kurz", duration_s=0.3)
    planned = session.plan(short)
    assert planned.action == ShowText(1, "kurz", 1)
    assert planned.follow_up is None
    long = DisplayShow(command_id="b", action="show", line=2, text="lang", duration_s=80000)
    planned = session.plan(long)
    assert planned.action == ShowText(1, "lang")
    assert planned.follow_up is not None
    assert (planned.follow_up.after_s, planned.follow_up.planned.action) == (80000, Clear(1))


def http_answers() -> st.SearchStrategy[bytes]:
    """Garbage, and answers that look like HTTP with lengths that may lie."""
    head = st.builds(
        lambda status, length, extra: (
            f"HTTP/1.1 {status} X\r\nContent-Length: {length}\r\n{extra}\r\n".encode()
        ),
        st.integers(0, 999),
        st.integers(-5, 300),
        st.sampled_from(["", "Connection: close\r\n", "Transfer-Encoding: chunked\r\n"]),
    )
    answer = st.tuples(head, st.binary(max_size=200)).map(lambda hb: hb[0] + hb[1])
    return st.one_of(st.binary(max_size=200), answer)


@given(http_answers())
async def test_any_answer_is_a_response_or_our_own_error(answer: bytes) -> None:
    async def reply(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(answer)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(reply, "127.0.0.1", 0)
    async with server:
        conn = HttpConnection("127.0.0.1", server.sockets[0].getsockname()[1], timeout_s=2.0)
        try:
            _status, body = await conn.request(get_db())
            assert len(body) <= len(answer)
        except (FrameError, TransportError):
            pass
        finally:
            conn.close()
