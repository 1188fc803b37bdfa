"""A simulated OpenEPaperLink access point: a small HTTP server on 127.0.0.1.

It answers the endpoints the ``drivers.openepaperlink`` builders use, with the status codes and
bodies of the AP's ``web.cpp`` (``/jsonupload``, ``/get_db``, ``/tag_cmd``), and records what
each tag has been told to show, which is the ground truth an output test checks. Tags exist only
once ``add_tag`` registered them, as on a real AP where a tag must have checked in first.
``running = False`` makes uploads answer 409 "come back later", as the AP does while it boots.
``stop()`` and ``start()`` take the AP off the network and back on the same port (a power cut),
closing open connections; ``drop_connections()`` closes them only (an idle keep-alive timeout).

The HTTP side is deliberately small: HTTP/1.1 with Content-Length bodies and keep-alive, no
chunked encoding, no TLS. Bodies are form-encoded, which is all the AP accepts on these routes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, Self
from urllib.parse import parse_qsl, urlsplit

from drivers.errors import EncodeError
from drivers.openepaperlink import TagInfo, normalize_mac

MAX_HEADER: Final = 16 * 1024
MAX_BODY: Final = 64 * 1024
JSON_TEMPLATE_MODE: Final = 19  # contentMode doJsonUpload sets
_REASONS: Final = {200: "OK", 400: "Bad Request", 404: "Not Found", 409: "Conflict"}


@dataclass(slots=True)
class SimTag:
    info: TagInfo
    template: list[Any] | None = None  # the last JSON template uploaded
    uploads: int = 0
    commands: list[str] = field(default_factory=list)

    def texts(self) -> list[str]:
        """The strings of the ``text`` elements now on the tag, top to bottom as uploaded."""
        return [e["text"][2] for e in self.template or [] if isinstance(e, dict) and "text" in e]


@dataclass(frozen=True, slots=True)
class _Response:
    status: int
    body: bytes
    content_type: str = "text/plain"


class AccessPointSim:
    def __init__(self, *, page_size: int = 50, port: int = 0) -> None:
        self.tags: dict[str, SimTag] = {}
        self.running = True
        self.page_size = page_size
        self.requests: list[tuple[str, str]] = []  # (method, path)
        self.connections = 0  # accepted, in total
        self._server: asyncio.Server | None = None
        self._open: dict[asyncio.StreamWriter, asyncio.Task[Any]] = {}
        self.port = port

    def add_tag(self, mac: str, alias: str = "") -> SimTag:
        norm = normalize_mac(mac)
        tag = SimTag(TagInfo(norm.rjust(16, "0"), alias=alias))
        self.tags[tag.info.mac] = tag
        return tag

    def tag(self, mac: str) -> SimTag:
        return self.tags[normalize_mac(mac).rjust(16, "0")]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Listen on ``port`` (a free one the first time, when it is 0)."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        handlers = list(self._open.values())
        self.drop_connections()
        # Let each handler see its connection closed and return: a handler still pending when
        # the loop shuts down is cancelled, and 3.11's stream callback then logs an error.
        if handlers:
            await asyncio.wait(handlers, timeout=1.0)

    def drop_connections(self) -> None:
        for writer in list(self._open):
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None  # start_server runs every handler in a task of its own
        self._open[writer] = task
        try:
            while (request := await _read_request(reader)) is not None:
                method, target, body = request
                response = self.handle(method, target, body)
                writer.write(_response_bytes(response))
                await writer.drain()
        except (
            ConnectionError,
            ValueError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
        ):
            pass  # the client went away or sent something this server will not parse
        finally:
            self._open.pop(writer, None)
            writer.close()

    def handle(self, method: str, target: str, body: bytes) -> _Response:
        url = urlsplit(target)
        self.requests.append((method, url.path))
        query = dict(parse_qsl(url.query))
        form = dict(parse_qsl(body.decode("utf-8", "replace")))
        match (method, url.path):
            case ("POST", "/jsonupload"):
                return self._json_upload(form)
            case ("GET", "/get_db"):
                return self._get_db(query)
            case ("POST", "/tag_cmd"):
                return self._tag_cmd(form)
            case _:
                return _Response(404, b"")

    def _find(self, mac: str) -> SimTag | None:
        try:
            return self.tags.get(normalize_mac(mac).rjust(16, "0"))
        except EncodeError:
            return None

    def _json_upload(self, form: dict[str, str]) -> _Response:
        if not self.running:
            return _Response(409, b"come back later")
        if "mac" not in form or "json" not in form:
            return _Response(400, b"Missing parameters")
        tag = self._find(form["mac"])
        if tag is None:
            return _Response(400, b"mac not found in tagDB")
        try:
            template = json.loads(form["json"])
        except json.JSONDecodeError:
            template = None  # the AP stores the file unparsed; the tag would render nothing
        tag.template = template if isinstance(template, list) else None
        tag.uploads += 1
        tag.info = dataclasses.replace(tag.info, pending=True, content_mode=JSON_TEMPLATE_MODE)
        return _Response(200, b"Ok, saved")

    def _get_db(self, query: dict[str, str]) -> _Response:
        if "mac" in query:
            tag = self._find(query["mac"])
            if tag is None and _bad_mac(query["mac"]):
                return _json({"error": "malformatted parameter"})
            return _json({"tags": [tag.info.to_json()] if tag else []})
        pos = int(query.get("pos", "0") or 0)
        tags = list(self.tags.values())
        page = tags[pos : pos + self.page_size]
        doc: dict[str, Any] = {"tags": [t.info.to_json() for t in page]}
        if pos + self.page_size < len(tags):
            doc["continu"] = pos + self.page_size
        return _json(doc)

    def _tag_cmd(self, form: dict[str, str]) -> _Response:
        if "mac" not in form or "cmd" not in form:
            return _Response(500, b"param error")
        tag = self._find(form["mac"])
        if tag is None:
            return _Response(400, b"Error: mac not found")
        tag.commands.append(form["cmd"])
        return _Response(200, b"Ok, done")


def _bad_mac(mac: str) -> bool:
    try:
        normalize_mac(mac)
    except EncodeError:
        return True
    return False


def _json(doc: dict[str, Any]) -> _Response:
    return _Response(200, json.dumps(doc).encode("utf-8"), "application/json")


def _response_bytes(response: _Response) -> bytes:
    head = (
        f"HTTP/1.1 {response.status} {_REASONS.get(response.status, 'Error')}\r\n"
        f"Content-Type: {response.content_type}\r\n"
        f"Content-Length: {len(response.body)}\r\n\r\n"
    )
    return head.encode("ascii") + response.body


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, bytes] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None  # keep-alive connection closed between requests
    if len(head) > MAX_HEADER:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers = dict(line.split(":", 1) for line in lines[1:] if ":" in line)
    length = int({k.strip().lower(): v for k, v in headers.items()}.get("content-length", 0))
    body = await reader.readexactly(min(length, MAX_BODY))
    return method, target, body
