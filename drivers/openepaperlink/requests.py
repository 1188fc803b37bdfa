"""Requests to an OpenEPaperLink access point, as data: method, path, query, form. No I/O.

Endpoints, from the AP's web server (OpenEPaperLink/OpenEPaperLink, formerly
jjwbruijn/OpenEPaperLink, ``ESP32_AP-Flasher/src/web.cpp`` ``init_web``):

* ``POST /jsonupload`` form ``mac``, ``json`` and optional ``ttl`` (``doJsonUpload``): stores the
  JSON drawing template as ``/current/<mac>.json`` and switches the tag to content mode 19, so the
  AP renders it at the tag's next check-in. Answers ``200 Ok, saved``; ``400 mac not found in
  tagDB``; ``400 Missing parameters``; ``409 come back later`` while the AP is not running.
* ``GET /get_db`` with ``mac`` (one tag) or ``pos`` (a page from that index): ``{"tags": [...]}``,
  plus ``"continu": <next pos>`` when the page is full (``tag_db.cpp`` ``tagDBtoJson``).
* ``POST /tag_cmd`` form ``mac``, ``cmd`` (``refresh``, ``clear``, ``reboot``, ``scan``, ``del``,
  ``ledflash`` ...): ``200 Ok, done`` or ``400 Error: mac not found``.

The template format is the wiki's "Json template" page: a JSON array of one-key objects such as
``{"text": [x, y, "text", "font", color]}``, ``{"box": [x, y, w, h, color]}`` and
``{"line": [x1, y1, x2, y2, color]}``; color 0 white, 1 black, 2 red/yellow.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, TypeAlias
from urllib.parse import urlencode

from drivers.errors import EncodeError

FORM_CONTENT_TYPE: Final = "application/x-www-form-urlencoded"
_MAC_RE: Final = re.compile(r"[0-9A-F]{12}|[0-9A-F]{16}")
DEFAULT_FONT: Final = "fonts/bahnschrift20"  # ships with the AP's file system


class Color(enum.IntEnum):
    WHITE = 0
    BLACK = 1
    ACCENT = 2  # red or yellow, depending on the panel


class TagCommand(enum.StrEnum):
    REFRESH = "refresh"
    CLEAR = "clear"
    REBOOT = "reboot"
    SCAN = "scan"
    DELETE = "del"
    LED_FLASH = "ledflash"


def normalize_mac(mac: str) -> str:
    """Uppercase hex without separators, 12 or 16 digits, as the AP's ``hex2mac`` accepts."""
    clean = re.sub(r"[:\-\s]", "", mac).upper()
    if _MAC_RE.fullmatch(clean) is None:
        raise EncodeError(f"not a tag MAC (12 or 16 hex digits): {mac!r}")
    return clean


@dataclass(frozen=True, slots=True)
class Text:
    x: int
    y: int
    text: str
    font: str = DEFAULT_FONT
    color: Color = Color.BLACK

    def to_json(self) -> dict[str, list[object]]:
        return {"text": [self.x, self.y, self.text, self.font, int(self.color)]}


@dataclass(frozen=True, slots=True)
class Box:
    x: int
    y: int
    width: int
    height: int
    color: Color = Color.BLACK

    def to_json(self) -> dict[str, list[object]]:
        return {"box": [self.x, self.y, self.width, self.height, int(self.color)]}


@dataclass(frozen=True, slots=True)
class Line:
    x1: int
    y1: int
    x2: int
    y2: int
    color: Color = Color.BLACK

    def to_json(self) -> dict[str, list[object]]:
        return {"line": [self.x1, self.y1, self.x2, self.y2, int(self.color)]}


Element: TypeAlias = Text | Box | Line


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    path: str
    query: tuple[tuple[str, str], ...] = ()
    form: tuple[tuple[str, str], ...] = ()

    @property
    def target(self) -> str:
        return f"{self.path}?{urlencode(self.query)}" if self.query else self.path

    @property
    def body(self) -> bytes:
        return urlencode(self.form).encode("ascii")

    @property
    def headers(self) -> dict[str, str]:
        return {"Content-Type": FORM_CONTENT_TYPE} if self.form else {}


def template_json(elements: Sequence[Element]) -> str:
    return json.dumps([e.to_json() for e in elements], ensure_ascii=False, separators=(",", ":"))


def json_upload(
    mac: str, elements: Sequence[Element], *, ttl_min: int | None = None
) -> HttpRequest:
    """Show ``elements`` on a tag. ``ttl_min``: minutes until the tag checks in again."""
    form = [("mac", normalize_mac(mac)), ("json", template_json(elements))]
    if ttl_min is not None:
        if ttl_min < 0:
            raise EncodeError(f"ttl {ttl_min} must not be negative")
        form.append(("ttl", str(ttl_min)))
    return HttpRequest("POST", "/jsonupload", form=tuple(form))


def text_lines(lines: Sequence[str], *, font: str = DEFAULT_FONT, line_px: int = 24) -> list[Text]:
    """The simple case: one text element per line, top-left aligned."""
    return [Text(5, 5 + i * line_px, line, font) for i, line in enumerate(lines)]


def get_db(*, mac: str | None = None, pos: int = 0) -> HttpRequest:
    if mac is not None:
        return HttpRequest("GET", "/get_db", query=(("mac", normalize_mac(mac)),))
    if pos < 0:
        raise EncodeError(f"pos {pos} must not be negative")
    return HttpRequest("GET", "/get_db", query=(("pos", str(pos)),) if pos else ())


def tag_cmd(mac: str, cmd: TagCommand) -> HttpRequest:
    return HttpRequest("POST", "/tag_cmd", form=(("mac", normalize_mac(mac)), ("cmd", cmd.value)))
