"""The access point simulator over a real socket, driven with the driver's requests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from drivers.errors import DeviceError
from drivers.openepaperlink import (
    HttpRequest,
    TagCommand,
    get_db,
    json_upload,
    parse_db,
    parse_upload,
    tag_cmd,
    text_lines,
)
from firmware_sim.esl import JSON_TEMPLATE_MODE, AccessPointSim

pytestmark = pytest.mark.timeout(10)

MAC = "0000021F8A3C4D5E"


class Http:
    """Just enough HTTP/1.1 client for the tests: one keep-alive connection, Content-Length."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def send(self, request: HttpRequest) -> tuple[int, bytes]:
        headers = {"Host": "ap", "Content-Length": str(len(request.body)), **request.headers}
        head = f"{request.method} {request.target} HTTP/1.1\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        self.writer.write(head.encode("ascii") + request.body)
        status_line, *lines = (await self.reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")
        length = next(
            int(v)
            for k, v in (ln.split(":", 1) for ln in lines if ":" in ln)
            if k.lower() == "content-length"
        )
        return int(status_line.split()[1]), await self.reader.readexactly(length)


@pytest.fixture
async def ap() -> AsyncIterator[tuple[AccessPointSim, Http]]:
    async with AccessPointSim(page_size=2) as sim:
        reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
        try:
            yield sim, Http(reader, writer)
        finally:
            writer.close()
            await writer.wait_closed()


async def test_upload_shows_the_text_on_the_tag(ap: tuple[AccessPointSim, Http]) -> None:
    sim, http = ap
    sim.add_tag(MAC, alias="shelf-a")
    parse_upload(*await http.send(json_upload(MAC, text_lines(["Käse", "2,99 €"]), ttl_min=5)))
    tag = sim.tag(MAC)
    assert tag.texts() == ["Käse", "2,99 €"]
    assert tag.uploads == 1
    (info,) = parse_db(*await http.send(get_db(mac=MAC))).tags
    assert (info.mac, info.alias, info.pending, info.content_mode) == (
        MAC,
        "shelf-a",
        True,
        JSON_TEMPLATE_MODE,
    )


async def test_unknown_tag_and_booting_ap_are_refused(ap: tuple[AccessPointSim, Http]) -> None:
    sim, http = ap
    with pytest.raises(DeviceError) as info:
        parse_upload(*await http.send(json_upload(MAC, text_lines(["x"]))))
    assert info.value.status == 400
    sim.add_tag(MAC)
    sim.running = False
    with pytest.raises(DeviceError) as info:
        parse_upload(*await http.send(json_upload(MAC, text_lines(["x"]))))
    assert info.value.status == 409
    assert sim.tag(MAC).template is None


async def test_twelve_digit_macs_address_the_same_tag(ap: tuple[AccessPointSim, Http]) -> None:
    sim, http = ap
    sim.add_tag("1F8A3C4D5E6F")
    parse_upload(*await http.send(json_upload("1f:8a:3c:4d:5e:6f", text_lines(["ok"]))))
    assert sim.tag("00001F8A3C4D5E6F").texts() == ["ok"]


async def test_get_db_pages_with_continu(ap: tuple[AccessPointSim, Http]) -> None:
    sim, http = ap
    macs = [f"00000000000000{i:02X}" for i in range(5)]
    for mac in macs:
        sim.add_tag(mac)
    seen, pos = [], 0
    while True:
        page = parse_db(*await http.send(get_db(pos=pos)))
        seen += [t.mac for t in page.tags]
        if page.next_pos is None:
            break
        pos = page.next_pos
    assert seen == macs
    assert sim.requests.count(("GET", "/get_db")) == 3


async def test_tag_commands_are_recorded(ap: tuple[AccessPointSim, Http]) -> None:
    sim, http = ap
    sim.add_tag(MAC)
    parse_upload(*await http.send(tag_cmd(MAC, TagCommand.REFRESH)))
    assert sim.tag(MAC).commands == ["refresh"]
    with pytest.raises(DeviceError):
        parse_upload(*await http.send(tag_cmd("0000000000000001", TagCommand.REFRESH)))


async def test_unknown_route_is_404(ap: tuple[AccessPointSim, Http]) -> None:
    _, http = ap
    status, _ = await http.send(HttpRequest("GET", "/nope"))
    assert status == 404
