"""The session for OpenEPaperLink electronic shelf labels, through the access point's HTTP API.

Only tags named in the config may be drawn on: a command for another MAC is refused before any
request, so a central server cannot repaint labels of a shelf the integrator did not hand it.
Hello reads the AP's tag table (``/get_db``, page by page); configured tags it does not know
put the output in the ``error`` state, since uploads to them would be refused. Uploads are
answered at once, but a tag shows the new content only at its next check-in (docs/drivers/
openepaperlink.md); ``execute`` returns when the AP has stored it.

``409 come back later`` (the AP is booting) and 5xx answers are retried within the deadline;
any other refusal is final. A connection that fails is reopened by the supervisor, with the
upload still at the head of the queue.
"""

from __future__ import annotations

import math
from typing import Final

from drivers.errors import DeviceError
from drivers.openepaperlink import (
    HttpRequest,
    get_db,
    json_upload,
    normalize_mac,
    parse_db,
    parse_upload,
    text_lines,
)
from drivers.openepaperlink.responses import HTTP_CONFLICT
from gateway.commands import AnyCommand, EpaperShow, OutputError, OutputKind
from gateway.config.outputs import OpenEPaperLinkOutput
from gateway.health import DeviceState, StateListener
from gateway.outputs.base import (
    ACTION_DEADLINE_S,
    InvalidCommandError,
    OutputSession,
    Planned,
    RetryableError,
)
from gateway.outputs.http import HttpConnection
from gateway.text import unsafe

MAX_PAGES: Final = 100  # 5000 tags at the AP's 50 a page; more is a loop, not a shop
HTTP_PORT: Final = 80


def _long_mac(mac: str) -> str:
    # The AP keeps 16 digits and takes 12 as the same tag with leading zeros (hex2mac).
    return normalize_mac(mac).rjust(16, "0")


class LabelSession(OutputSession[HttpConnection, HttpRequest]):
    def __init__(
        self,
        config: OpenEPaperLinkOutput,
        on_state: StateListener,
        *,
        deadline_s: float = ACTION_DEADLINE_S,
    ) -> None:
        super().__init__(config.id, on_state, deadline_s=deadline_s)
        self.config = config
        self.names = {_long_mac(mac): name for name, mac in config.tags.items()}

    @property
    def kind(self) -> OutputKind:
        return "openepaperlink"

    def plan(self, command: AnyCommand) -> Planned[HttpRequest]:
        if not isinstance(command, EpaperShow):
            raise InvalidCommandError(_not_mine(self.id, command))
        name = self.names.get(_long_mac(command.mac))
        if name is None:
            raise InvalidCommandError(f"{self.id}: tag {command.mac} is not configured here")
        for number, line in enumerate(command.lines, start=1):
            where = unsafe(line)
            if where is not None:  # the model refuses it too; a command built unchecked does not
                raise InvalidCommandError(f"{self.id}: line {number}: {where} cannot be shown")
        ttl_min = math.ceil(command.ttl_s / 60)
        request = json_upload(command.mac, text_lines(command.lines), ttl_min=ttl_min)
        return Planned(request, f"show {len(command.lines)} lines on tag {name}")

    async def _open(self) -> HttpConnection:
        url = self.config.url
        conn = HttpConnection(url.host or "", url.port or HTTP_PORT, self.config.timeout_s)
        await conn.connect()
        return conn

    def _close(self, conn: HttpConnection) -> None:
        conn.close()

    async def _hello(self, conn: HttpConnection) -> None:
        known = await self._known_tags(conn)
        missing = sorted(name for mac, name in self.names.items() if mac not in known)
        if missing:
            detail = f"tags unknown to the access point: {', '.join(missing)}"
            self.set_state(DeviceState.ERROR, detail)
        else:
            self.set_state(DeviceState.OK, f"{len(self.names)} tags, {len(known)} on the AP")

    async def _check(self, conn: HttpConnection) -> None:
        await self._hello(conn)

    async def _known_tags(self, conn: HttpConnection) -> set[str]:
        known: set[str] = set()
        pos: int | None = 0
        for _ in range(MAX_PAGES):
            if pos is None:
                break
            page = parse_db(*await conn.request(get_db(pos=pos)))
            known.update(tag.mac for tag in page.tags)
            pos = page.next_pos
        return known

    async def _attempt(self, conn: HttpConnection, action: HttpRequest) -> None:
        try:
            parse_upload(*await conn.request(action))
        except DeviceError as exc:
            if exc.status == HTTP_CONFLICT or (exc.status or 0) >= 500:
                raise RetryableError(str(exc)) from exc
            raise OutputError(f"{self.id}: {exc}") from exc


def _not_mine(output_id: str, command: AnyCommand) -> str:
    return f"{output_id}: {type(command).__name__} is not an openepaperlink command"
