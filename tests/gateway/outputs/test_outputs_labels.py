"""The OpenEPaperLink output session against the simulated access point, over real sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from drivers.errors import FrameError
from drivers.openepaperlink import get_db
from firmware_sim.esl import AccessPointSim
from gateway.commands import EpaperShow, OutputError, RelaySwitch
from gateway.config.outputs import OpenEPaperLinkOutput
from gateway.health import DeviceState
from gateway.outputs import InvalidCommandError, LabelSession, Outputs
from gateway.outputs.http import HttpConnection
from tests.waiting import background, until

pytestmark = pytest.mark.timeout(20)

States = list[tuple[DeviceState, str | None]]
CHEESE = "0000021F8A3C4D5E"
BREAD = "00:00:02:1F:8A:3C:4D:5F"  # as an integrator may copy it from the AP's web page


def label(mac: str, *lines: str, ttl_s: int = 600) -> EpaperShow:
    return EpaperShow(command_id="c-1", action="show", mac=mac, lines=list(lines), ttl_s=ttl_s)


def config(ap: AccessPointSim, *, timeout_s: float = 2.0) -> OpenEPaperLinkOutput:
    return OpenEPaperLinkOutput.model_validate(
        {
            "id": "labels",
            "driver": "openepaperlink",
            "url": ap.base_url,
            "tags": {"cheese": CHEESE, "bread": BREAD},
            "timeout_s": timeout_s,
        }
    )


@pytest.fixture
async def ap() -> AsyncIterator[AccessPointSim]:
    async with AccessPointSim(page_size=1) as sim:  # one tag a page: hello pages through
        sim.add_tag(CHEESE, alias="cheese")
        sim.add_tag(BREAD.replace(":", ""), alias="bread")
        yield sim


async def test_lines_are_uploaded_to_the_tag(ap: AccessPointSim) -> None:
    states: States = []
    session = LabelSession(config(ap), lambda _id, s, d: states.append((s, d)))
    async with background(session.run()):
        await session.execute(label(CHEESE, "Bergkäse", "2,99 €", ttl_s=90))
        await session.execute(label(BREAD.replace(":", "").lower(), "Brot"))
    assert ap.tag(CHEESE).texts() == ["Bergkäse", "2,99 €"]
    assert ap.tag(BREAD.replace(":", "")).texts() == ["Brot"]
    assert ap.tag(CHEESE).info.pending
    assert states == [(DeviceState.OK, "2 tags, 2 on the AP")]
    assert ap.connections == 1  # hello and both uploads over one keep-alive connection


async def test_a_booting_ap_is_retried_until_it_runs(ap: AccessPointSim) -> None:
    session = LabelSession(config(ap), lambda *_: None)
    async with background(session.run()):
        await until(lambda: session.state == DeviceState.OK)
        ap.running = False
        upload = asyncio.create_task(session.execute(label(CHEESE, "später")))
        await until(lambda: ap.requests.count(("POST", "/jsonupload")) >= 2)
        ap.running = True
        await upload
    assert ap.tag(CHEESE).texts() == ["später"]
    assert ap.tag(CHEESE).uploads == 1


async def test_an_ap_that_stays_busy_is_reported_by_the_deadline(ap: AccessPointSim) -> None:
    session = LabelSession(config(ap), lambda *_: None, deadline_s=0.5)
    async with background(session.run()):
        await until(lambda: session.state == DeviceState.OK)
        ap.running = False
        with pytest.raises(OutputError, match="409: come back later"):
            await session.execute(label(CHEESE, "nie"))
    assert ap.requests.count(("POST", "/jsonupload")) >= 3
    assert ap.tag(CHEESE).template is None


async def test_a_tag_the_ap_does_not_know_is_an_error(ap: AccessPointSim) -> None:
    del ap.tags[CHEESE]
    session = LabelSession(config(ap), lambda *_: None)
    async with background(session.run()):
        await until(lambda: session.state != DeviceState.STARTING)
        assert session.state == DeviceState.ERROR
        assert session.detail == "tags unknown to the access point: cheese"
        with pytest.raises(OutputError, match="400: mac not found in tagDB"):
            await session.execute(label(CHEESE, "x"))
    assert session.failed == 1


async def test_malformed_commands_never_reach_the_ap(ap: AccessPointSim) -> None:
    session = LabelSession(config(ap), lambda *_: None)
    async with background(session.run()):
        await until(lambda: session.state == DeviceState.OK)
        before = list(ap.requests)
        with pytest.raises(InvalidCommandError, match="not configured here"):
            await session.execute(label("0000AAAABBBBCCCC", "fremd"))
        relay = RelaySwitch(command_id="r", action="switch", channel=1, on=True)
        with pytest.raises(
            InvalidCommandError, match="RelaySwitch is not an openepaperlink command"
        ):
            await session.execute(relay)
        assert ap.requests == before


async def test_a_dropped_keep_alive_connection_is_reopened_quietly(ap: AccessPointSim) -> None:
    states: States = []
    session = LabelSession(config(ap), lambda _id, s, d: states.append((s, d)))
    async with background(session.run()):
        await session.execute(label(CHEESE, "eins"))
        ap.drop_connections()  # the AP's idle timeout
        await asyncio.sleep(0.05)
        await session.execute(label(CHEESE, "zwei"))
    assert ap.tag(CHEESE).texts() == ["zwei"]
    assert ap.connections == 2
    assert [s for s, _ in states] == [DeviceState.OK]


async def test_an_ap_power_cut_is_survived(ap: AccessPointSim) -> None:
    states: States = []
    outputs = Outputs([config(ap, timeout_s=0.5)], lambda _id, s, d: states.append((s, d)))
    session = outputs["labels"]
    async with background(outputs.run()):
        await session.execute(label(CHEESE, "vorher"))
        await ap.stop()
        upload = asyncio.create_task(session.execute(label(CHEESE, "nachher")))
        await until(lambda: session.state == DeviceState.DOWN)
        await ap.start()
        await upload  # waited at the head of the queue through the reconnect
    assert ap.tag(CHEESE).texts() == ["nachher"]
    assert [s for s, _ in states] == [DeviceState.OK, DeviceState.DOWN, DeviceState.OK]
    assert "cannot connect" in (states[1][1] or "")


async def test_the_client_refuses_what_is_not_http() -> None:
    async def nonsense(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(nonsense, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        conn = HttpConnection("127.0.0.1", port, timeout_s=2.0)
        with pytest.raises(FrameError, match="not an HTTP answer"):
            await conn.request(get_db())
        conn.close()


async def test_control_and_bidi_lines_built_unchecked_never_reach_the_ap(
    ap: AccessPointSim,
) -> None:
    # The command model refuses such lines; a command built without validation (model_construct)
    # meets the session's own check.
    session = LabelSession(config(ap), lambda *_: None)
    async with background(session.run()):
        await until(lambda: session.state == DeviceState.OK)
        before = list(ap.requests)
        unchecked = EpaperShow.model_construct(
            command_id="c-u", action="show", mac=CHEESE, lines=["ok", "\u2066x\u2069"], ttl_s=60
        )
        with pytest.raises(InvalidCommandError, match="line 2: U\\+2066"):
            await session.execute(unchecked)
        assert ap.requests == before
